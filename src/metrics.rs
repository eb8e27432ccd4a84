//! Prometheus metrics, served at `GET /metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    commands: Family<Vec<(String, String)>, Counter>,
    deployments_created: Counter,
    statuses_relayed: Counter,
    replies_delivered: Counter,
    reply_failures: Counter,
    webhooks_handled: Family<Vec<(String, String)>, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hoist");
        let commands = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "commands",
            "Commands handled, by outcome (deployed, noop, answered, invalid, refused, error)",
            commands.clone(),
        );
        let deployments_created = Counter::default();
        registry.register(
            "deployments_created",
            "Deployments created on the forge",
            deployments_created.clone(),
        );
        let statuses_relayed = Counter::default();
        registry.register(
            "statuses_relayed",
            "Deployment statuses relayed to a conversation",
            statuses_relayed.clone(),
        );
        let replies_delivered = Counter::default();
        registry.register(
            "replies_delivered",
            "Outbox replies delivered to a chat platform",
            replies_delivered.clone(),
        );
        let reply_failures = Counter::default();
        registry.register(
            "reply_failures",
            "Outbox delivery attempts that failed and will be retried",
            reply_failures.clone(),
        );
        let webhooks_handled = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "webhooks_handled",
            "Stored webhook deliveries and chat requests handled, by outcome (processed, dropped)",
            webhooks_handled.clone(),
        );
        Self {
            webhooks_handled,
            registry,
            commands,
            deployments_created,
            statuses_relayed,
            replies_delivered,
            reply_failures,
        }
    }
}

impl Metrics {
    pub fn command(&self, outcome: &str) {
        self.commands
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
    }

    pub fn deployment_created(&self) {
        self.deployments_created.inc();
    }

    pub fn status_relayed(&self) {
        self.statuses_relayed.inc();
    }

    pub fn reply_delivered(&self) {
        self.replies_delivered.inc();
    }

    pub fn reply_failed(&self) {
        self.reply_failures.inc();
    }

    /// `count` stored deliveries were handled, `processed` or `dropped`.
    pub fn webhooks_handled(&self, outcome: &str, count: usize) {
        self.webhooks_handled
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc_by(count as u64);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
