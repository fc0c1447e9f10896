//! This node's address for the others (`NODE_ADDR`) when it is not configured: on Amazon ECS
//! the task's private IP from the container metadata endpoint (awsvpc: one IP per task, which the
//! image cannot know in advance), else the address it binds (loopback if it binds all addresses,
//! enough for nodes on one host).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Set by the ECS agent in every container of a task.
pub const ECS_METADATA_URI: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// `http://host:port` under which the other nodes reach this one; `ecs_metadata` is the value of
/// `ECS_CONTAINER_METADATA_URI_V4` if set.
pub async fn default_node_addr(bound: SocketAddr, ecs_metadata: Option<&str>) -> String {
    if let Some(uri) = ecs_metadata {
        match ecs_private_ip(uri).await {
            Ok(ip) => return format!("http://{}", SocketAddr::new(ip, bound.port())),
            Err(e) => tracing::warn!(error = %e, "no private address in the ecs task metadata; set NODE_ADDR"),
        }
    }
    let host: IpAddr = if bound.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { bound.ip() };
    format!("http://{}", SocketAddr::new(host, bound.port()))
}

/// The first IPv4 address of the container's networks (task metadata v4, `GET ${uri}`).
async fn ecs_private_ip(uri: &str) -> anyhow::Result<IpAddr> {
    #[derive(serde::Deserialize)]
    struct Container {
        #[serde(rename = "Networks", default)]
        networks: Vec<Network>,
    }
    #[derive(serde::Deserialize)]
    struct Network {
        #[serde(rename = "IPv4Addresses", default)]
        ipv4: Vec<String>,
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let container: Container = client.get(uri).send().await?.error_for_status()?.json().await?;
    container
        .networks
        .iter()
        .flat_map(|n| &n.ipv4)
        .find_map(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the task metadata lists no IPv4 address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the ECS agent's metadata endpoint on a loopback port.
    async fn metadata_server(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/v4/task-1",
            axum::routing::get(move || async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/v4/task-1")
    }

    #[tokio::test]
    async fn on_ecs_the_task_private_ip_is_the_node_address() {
        let uri = metadata_server(
            r#"{"DockerId":"x","Name":"boxoffice","Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.1.23"]}]}"#,
        )
        .await;
        let bound: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(default_node_addr(bound, Some(&uri)).await, "http://10.0.1.23:8080");
    }

    #[tokio::test]
    async fn without_metadata_the_bound_address_is_used() {
        let uri = metadata_server(r#"{"Networks":[]}"#).await;
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(default_node_addr(any, Some(&uri)).await, "http://127.0.0.1:8080");
        let one: SocketAddr = "10.1.2.3:9000".parse().unwrap();
        assert_eq!(default_node_addr(one, None).await, "http://10.1.2.3:9000");
    }
}
