//! Where the broker is: the nodes of a RabbitMQ cluster (or one server) and the TLS
//! settings to reach them. Connecting tries the nodes in turn, starting from the one
//! that last worked, so a process fails over to another node when its node dies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties};

use crate::config::BrokerSettings;

/// How long one node may take to accept a connection before the next is tried: a
/// node cut off by a partition does not answer at all. Generous, since a busy
/// broker on a loaded machine can take seconds to finish a handshake.
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Cheap to clone; clones share which node to try first.
#[derive(Clone)]
pub struct Broker {
    nodes: Arc<[String]>,
    tls: Arc<OwnedTLSConfig>,
    /// The node to try first: the one that last accepted a connection.
    first: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// One node or a comma-separated list, without TLS settings of our own (an
    /// `amqps://` node is then checked against the system's roots).
    pub fn new(urls: &str) -> Self {
        Self::with_tls(urls, OwnedTLSConfig::default())
    }

    /// The broker the settings name, with their CA and client certificate.
    pub fn from_settings(settings: &BrokerSettings) -> Self {
        let pem = |f: &crate::config::PemFile| String::from_utf8_lossy(f.pem()).into_owned();
        let identity = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => {
                Some(OwnedIdentity::PKCS8 { pem: cert.pem().to_vec(), key: key.pem().to_vec() })
            }
            _ => None,
        };
        let tls = OwnedTLSConfig {
            identity,
            cert_chain: settings.amqp_ca_file.as_ref().map(pem),
        };
        Self::with_tls(settings.amqp_url.expose(), tls)
    }

    fn with_tls(urls: &str, tls: OwnedTLSConfig) -> Self {
        let nodes: Arc<[String]> = urls
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        // Processes start on different nodes, so a fleet spreads over the cluster.
        let first = if nodes.len() > 1 {
            rand::random_range(0..nodes.len())
        } else {
            0
        };
        Self {
            nodes,
            tls: Arc::new(tls),
            first: Arc::new(AtomicUsize::new(first)),
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Opens a connection named after this process's role (visible in the broker's
    /// UI) to the first node that accepts one, trying each node once; the error of
    /// the last node tried when none does. Callers back off before trying again.
    pub async fn connect(&self, role: &str) -> lapin::Result<Connection> {
        let start = self.first.load(Ordering::Relaxed);
        let mut last_error = None;
        for step in 0..self.nodes.len() {
            let index = (start + step) % self.nodes.len();
            let props = ConnectionProperties::default()
                .with_connection_name(format!("hookrelay-{role}").into());
            let builder = lapin::DefaultConnectionBuilder::new()?
                .with_uri_str(self.nodes[index].clone())
                .with_properties(props)
                .with_tls_config((*self.tls).clone());
            let attempt = builder.connect();
            let outcome = match tokio::time::timeout(NODE_CONNECT_TIMEOUT, attempt).await {
                Ok(outcome) => outcome,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", NODE_CONNECT_TIMEOUT.as_secs()),
                )
                .into()),
            };
            match outcome {
                Ok(connection) => {
                    if index != start {
                        tracing::info!(role, node = %self.describe(index), "connected to another broker node");
                    }
                    self.first.store(index, Ordering::Relaxed);
                    return Ok(connection);
                }
                Err(e) => {
                    if self.nodes.len() > 1 {
                        tracing::warn!(role, node = %self.describe(index), error = %e, "broker node refused; trying the next");
                    }
                    last_error = Some(e);
                }
            }
        }
        self.first
            .store((start + 1) % self.nodes.len().max(1), Ordering::Relaxed);
        Err(last_error.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no broker node configured").into()
        }))
    }

    /// A node as host:port, without its credentials.
    fn describe(&self, index: usize) -> String {
        match self.nodes[index].parse::<AMQPUri>() {
            Ok(uri) => format!("{}:{}", uri.authority.host, uri.authority.port),
            Err(_) => format!("#{index}"),
        }
    }

    /// The nodes reached without TLS on a host other than loopback: their
    /// credentials and every event cross the network in the clear.
    pub fn plaintext_remote_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(index, url)| {
                let uri = url.parse::<AMQPUri>().ok()?;
                let plain = matches!(uri.scheme, AMQPScheme::AMQP);
                (plain && !crate::target_policy::is_loopback_host(&uri.authority.host))
                    .then(|| self.describe(index))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nodes_and_flags_plaintext_remote_ones() {
        let broker = Broker::new(
            "amqp://guest:guest@127.0.0.1:5672/%2f, amqp://u:p@mq2.internal:5672/%2f,amqps://u:p@mq3.internal:5671/%2f",
        );
        assert_eq!(broker.node_count(), 3);
        assert_eq!(broker.plaintext_remote_nodes(), vec!["mq2.internal:5672"]);
        assert!(
            Broker::new("amqp://localhost:5672")
                .plaintext_remote_nodes()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn fails_over_to_a_node_that_answers() {
        let live = std::env::var("HOOKRELAY_TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        // A port nothing listens on: bound, then released.
        let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let broker = Broker::new(&format!(
            "amqp://guest:guest@127.0.0.1:{dead_port}/%2f,{live}"
        ));
        broker.first.store(0, Ordering::Relaxed);
        let connection = broker
            .connect("test")
            .await
            .expect("the second node answers");
        assert!(connection.status().connected());
        assert_eq!(
            broker.first.load(Ordering::Relaxed),
            1,
            "remembers the node that worked"
        );
        let _ = connection.close(200, "bye".into()).await;

        let none = Broker::new(&format!("amqp://guest:guest@127.0.0.1:{dead_port}/%2f"));
        assert!(none.connect("test").await.is_err());
    }
}
