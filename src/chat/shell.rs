//! The shell adapter: type commands as a chat user would.
//!
//! On a terminal it uses rustyline, whose external printer puts replies
//! above the line being typed instead of through it. With piped input it
//! reads plain lines, so `hoist demo < script` works. At the end of input
//! (or `exit`) it waits for running deployments and their last replies,
//! so a scripted session shows every status before it ends.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rustyline::ExternalPrinter;
use rustyline::error::ReadlineError;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::Hoist;
use crate::chat::{ChatAdapter, DeliveryError, Inbound, Reply};
use crate::domain::{Actor, Origin, Platform};
use crate::relay::Outbox;

const PROMPT: &str = "hoist> ";

/// Where replies are written.
enum Printer {
    /// Piped output: plain lines.
    Plain,
    /// A terminal with a line editor: print above the prompt.
    Editor(Mutex<Box<dyn ExternalPrinter + Send>>),
}

struct ShellAdapter {
    printer: Printer,
}

#[async_trait]
impl ChatAdapter for ShellAdapter {
    fn platform(&self) -> Platform {
        Platform::Shell
    }

    async fn deliver(
        &self,
        reply: &Reply,
        _card_message: Option<&str>,
    ) -> Result<Option<String>, DeliveryError> {
        match &self.printer {
            Printer::Plain => {
                println!("{}", reply.text);
                Ok(None)
            }
            Printer::Editor(printer) => printer
                .lock()
                .map_err(|_| DeliveryError::Failed("terminal printer poisoned".into()))?
                .print(format!("{}\n", reply.text))
                .map(|()| None)
                .map_err(|e| DeliveryError::Failed(format!("cannot print: {e}"))),
        }
    }
}

/// Runs the shell until end of input or `exit`.
pub async fn run(hoist: Arc<Hoist>) -> anyhow::Result<()> {
    let (lines_tx, mut lines) = mpsc::channel::<String>(1);
    let printer = if std::io::stdin().is_terminal() {
        Printer::Editor(Mutex::new(spawn_editor(lines_tx)?))
    } else {
        tokio::spawn(read_piped(lines_tx));
        Printer::Plain
    };
    let outbox = Outbox::new([Arc::new(ShellAdapter { printer }) as Arc<dyn ChatAdapter>]);
    let stop_outbox = CancellationToken::new();
    let outbox_task = tokio::spawn(outbox.run_until(Arc::clone(&hoist), stop_outbox.clone()));

    let actor = shell_actor(&hoist.config.users);
    let origin = Origin {
        platform: Platform::Shell,
        conversation: "shell".into(),
        message: None,
        link: None,
        actor: actor.clone(),
    };
    println!("hoist shell: type `help` for the commands, `exit` to leave.");
    while let Some(line) = lines.recv().await {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if matches!(text, "exit" | "quit") {
            break;
        }
        let inbound = Inbound::typed(
            origin.clone(),
            text,
            format!("shell:{}", uuid::Uuid::new_v4()),
        );
        if let Err(error) = hoist.handle(inbound).await {
            tracing::error!(error = format!("{error:#}"), "command failed");
            println!("Something went wrong on my side; see the log above.");
        }
    }
    if hoist.busy() {
        // Through the outbox, so it comes after the replies queued before.
        let waiting = Reply::text(
            origin,
            "Waiting for running deployments to finish...",
            false,
        );
        hoist.reply(&waiting, None).await?;
    }
    hoist.settle().await;
    stop_outbox.cancel();
    outbox_task.await?;
    Ok(())
}

/// The person at the keyboard: `$USER`, linked to a GitHub login by
/// `[users]` like a chat user.
fn shell_actor(users: &std::collections::BTreeMap<String, String>) -> Actor {
    let name = std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "you".into());
    Actor {
        login: users.get(&name).cloned(),
        id: name.clone(),
        name,
    }
}

async fn read_piped(lines: mpsc::Sender<String>) {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        if lines.send(line).await.is_err() {
            break;
        }
    }
}

/// Starts rustyline on its own thread (it blocks) and returns the printer
/// that writes above its prompt.
fn spawn_editor(lines: mpsc::Sender<String>) -> anyhow::Result<Box<dyn ExternalPrinter + Send>> {
    let mut editor = rustyline::DefaultEditor::new()?;
    let printer = editor.create_external_printer()?;
    std::thread::spawn(move || {
        loop {
            match editor.readline(PROMPT) {
                Ok(line) => {
                    let _ = editor.add_history_entry(line.as_str());
                    if lines.blocking_send(line).is_err() {
                        break;
                    }
                }
                Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
                Err(error) => {
                    eprintln!("cannot read the terminal: {error}");
                    break;
                }
            }
        }
    });
    Ok(Box::new(printer))
}
