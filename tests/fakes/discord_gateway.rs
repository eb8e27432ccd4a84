//! A fake Discord gateway: a WebSocket on 127.0.0.1 that speaks enough of
//! the protocol (v10, JSON, no compression) for hoist's client: HELLO,
//! IDENTIFY answered with READY, RESUME answered with RESUMED, heartbeats
//! acknowledged, MESSAGE_CREATE dispatched on the test's word, and a
//! connection dropped on purpose.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::discord::BOT_USER_ID;

const SESSION_ID: &str = "fake-session-1";
/// serenity's captured MESSAGE_CREATE, the shape every dispatch takes.
const MESSAGE_FIXTURE: &str =
    include_str!("../fixtures/discord/gateway.message_create.d.serenity.json");

/// What the test tells the live connection.
enum Order {
    Dispatch(Value),
    /// Close the TCP connection without a close frame: a lost network.
    Drop,
}

#[derive(Default)]
struct Model {
    /// The first frame of each connection: IDENTIFY (op 2) or RESUME (op 6).
    greetings: Vec<Value>,
    live: Option<mpsc::UnboundedSender<Order>>,
    seq: u64,
}

pub struct FakeGateway {
    address: SocketAddr,
    model: Arc<Mutex<Model>>,
}

impl FakeGateway {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let model = Arc::new(Mutex::new(Model::default()));
        let shared = Arc::clone(&model);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(connection(stream, address, Arc::clone(&shared)));
            }
        });
        Self { address, model }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.address)
    }

    /// IDENTIFY and RESUME frames received, in order.
    pub fn greetings(&self) -> Vec<Value> {
        self.model.lock().unwrap().greetings.clone()
    }

    /// Waits until `count` connections have said who they are.
    pub async fn wait_greetings(&self, count: usize) -> Vec<Value> {
        for _ in 0..400 {
            let greetings = self.greetings();
            if greetings.len() >= count && self.model.lock().unwrap().live.is_some() {
                return greetings;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway was greeted {:?}", self.greetings());
    }

    /// Dispatches a MESSAGE_CREATE by `author` with `content` in
    /// `channel`, mentioning the bot when the content does.
    pub fn message(
        &self,
        id: &str,
        channel: &str,
        (author_id, author): (&str, &str),
        content: &str,
    ) {
        let mut message: Value = serde_json::from_str(MESSAGE_FIXTURE).unwrap();
        message["id"] = json!(id);
        message["channel_id"] = json!(channel);
        message["author"]["id"] = json!(author_id);
        message["author"]["username"] = json!(author);
        message["content"] = json!(content);
        if content.contains(BOT_USER_ID) {
            message["mentions"] = json!([{"id": BOT_USER_ID, "username": "hoist", "bot": true}]);
        }
        self.order(Order::Dispatch(message));
    }

    /// Drops the live connection, as a network failure would.
    pub fn drop_connection(&self) {
        self.order(Order::Drop);
    }

    fn order(&self, order: Order) {
        let live = self.model.lock().unwrap().live.take();
        let live = live.expect("a live gateway connection");
        if !matches!(order, Order::Drop) {
            self.model.lock().unwrap().live = Some(live.clone());
        }
        live.send(order).ok();
    }
}

async fn connection(stream: tokio::net::TcpStream, address: SocketAddr, model: Arc<Mutex<Model>>) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null});
    if socket.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    let Some(Ok(Message::Text(first))) = socket.next().await else {
        return;
    };
    let greeting: Value = serde_json::from_str(first.as_str()).unwrap_or_default();
    let (orders, mut inbox) = mpsc::unbounded_channel();
    let answer = {
        let mut model = model.lock().unwrap();
        model.greetings.push(greeting.clone());
        model.live = Some(orders);
        model.seq += 1;
        match greeting["op"].as_u64() {
            Some(2) => json!({"op": 0, "s": model.seq, "t": "READY", "d": {
                "v": 10, "session_id": SESSION_ID, "resume_gateway_url": format!("ws://{address}"),
                "user": {"id": BOT_USER_ID, "username": "hoist", "bot": true}, "guilds": [],
                "application": {"id": super::discord::APPLICATION_ID, "flags": 0},
            }}),
            Some(6) if greeting["d"]["session_id"] == SESSION_ID => {
                json!({"op": 0, "s": model.seq, "t": "RESUMED", "d": null})
            }
            // Not resumable: Discord says so, and the client identifies.
            _ => json!({"op": 9, "d": false, "s": null, "t": null}),
        }
    };
    if socket
        .send(Message::text(answer.to_string()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            order = inbox.recv() => match order {
                Some(Order::Dispatch(message)) => {
                    let seq = {
                        let mut model = model.lock().unwrap();
                        model.seq += 1;
                        model.seq
                    };
                    let frame = json!({"op": 0, "s": seq, "t": "MESSAGE_CREATE", "d": message});
                    if socket.send(Message::text(frame.to_string())).await.is_err() {
                        return;
                    }
                }
                Some(Order::Drop) | None => return,
            },
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    if frame["op"] == 1 {
                        let ack = json!({"op": 11, "d": null, "s": null, "t": null});
                        if socket.send(Message::text(ack.to_string())).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}
