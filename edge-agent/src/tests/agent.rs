//! The facade as `skyport-edge daemon` and `skyport up` drive it: start-up errors, the node
//! listener's address in the agent's state, and an orderly stop on cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Agent, AgentError, EdgeArgs, EdgeConfig};

fn agent(args: EdgeArgs) -> Agent {
    Agent::new(EdgeConfig::resolve(&args).unwrap()).unwrap()
}

#[tokio::test]
async fn an_agent_with_nothing_to_do_or_no_cloud_to_push_to_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let idle = agent(EdgeArgs {
        data: Some(dir.path().into()),
        ..EdgeArgs::default()
    });
    let e = idle.run(CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, AgentError::NothingToDo), "{e}");
    let lonely = agent(EdgeArgs {
        data: Some(dir.path().into()),
        subnets: vec!["127.0.0.1".into()],
        ..EdgeArgs::default()
    });
    let e = lonely.run(CancellationToken::new()).await.unwrap_err();
    assert!(e.to_string().contains("needs a cloud to push to"), "{e}");
}

#[tokio::test]
async fn the_agent_serves_nodes_until_cancelled_then_stops_its_listener() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(EdgeArgs {
        data: Some(dir.path().into()),
        listen: Some("127.0.0.1:0".into()),
        node_url: Some("http://127.0.0.1:9".into()),
        ..EdgeArgs::default()
    });
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (a, cancel) = (a.clone(), cancel.clone());
        async move { a.run(cancel).await }
    });
    let mut state = a.watch();
    let addr = tokio::time::timeout(
        Duration::from_secs(30),
        state.wait_for(|s| s.node_addr.is_some()),
    )
    .await
    .unwrap()
    .unwrap()
    .node_addr
    .unwrap();
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the agent did not stop after cancellation")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the node listener is still open after the agent stopped"
    );
}

#[tokio::test]
async fn a_node_address_in_use_is_a_start_up_error_not_a_restart_loop() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = agent(EdgeArgs {
        data: Some(dir.path().into()),
        listen: Some(taken.local_addr().unwrap().to_string()),
        ..EdgeArgs::default()
    });
    let e = tokio::time::timeout(Duration::from_secs(30), a.run(CancellationToken::new()))
        .await
        .expect("the agent kept running with its address taken")
        .unwrap_err();
    assert!(e.to_string().contains("binding"), "{e}");
}
