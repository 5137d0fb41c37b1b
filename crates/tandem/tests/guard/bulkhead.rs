use tandem::guard::BulkheadLayer;
use tandem::{Error, Transport};
use tower::{Layer, Service, ServiceExt};

use crate::breaker::tandem_wait;
use crate::stub::{req, Stub};

#[tokio::test]
async fn bulkhead_rejects_at_its_limit_without_queueing() {
    let stub = Stub::new();
    let mut svc = BulkheadLayer::new("inference", Transport::Grpc, 2).layer(stub.clone());
    let a = tokio::spawn(svc.ready().await.unwrap().call(req("gate")));
    let b = tokio::spawn(svc.ready().await.unwrap().call(req("gate")));
    tandem_wait(|| stub.calls() == 2).await;
    assert_eq!(svc.in_flight(), 2);

    let err = svc
        .ready()
        .await
        .unwrap()
        .call(req("ok"))
        .await
        .unwrap_err();
    match &err {
        Error::Overloaded {
            transport,
            target,
            limit,
        } => {
            assert_eq!(*transport, Transport::Grpc);
            assert_eq!(target, "bulkhead inference");
            assert_eq!(*limit, 2);
        }
        other => panic!("expected Overloaded, got {other:?}"),
    }
    assert!(err
        .to_string()
        .contains("overloaded: bulkhead inference (limit 2)"));
    assert_eq!(stub.calls(), 2, "a rejected call never reaches the service");

    // A finished call returns its permit.
    stub.gate.add_permits(1);
    let first = tokio::select! { r = a => r, r = b => r };
    first.unwrap().unwrap();
    tandem_wait(|| svc.in_flight() == 1).await;
    let c = tokio::spawn(svc.ready().await.unwrap().call(req("gate")));
    tandem_wait(|| stub.calls() == 3).await;
    stub.gate.add_permits(2);
    c.await.unwrap().unwrap();
}

#[tokio::test]
async fn dropped_calls_free_their_permits() {
    let stub = Stub::new();
    let layer = BulkheadLayer::new("pool", Transport::Pool, 1);
    let mut svc = layer.layer(stub.clone());
    let hung = svc.ready().await.unwrap().call(req("hang"));
    assert!(matches!(
        svc.ready().await.unwrap().call(req("ok")).await,
        Err(Error::Overloaded { .. })
    ));
    drop(hung);
    assert_eq!(svc.in_flight(), 0);
    svc.ready().await.unwrap().call(req("ok")).await.unwrap();
}

#[tokio::test]
async fn services_of_one_layer_share_the_permits() {
    let stub = Stub::new();
    let layer = BulkheadLayer::new("shared", Transport::Pool, 1);
    let mut one = layer.layer(stub.clone());
    let mut two = layer.layer(stub.clone());
    let _hung = one.ready().await.unwrap().call(req("hang"));
    assert!(matches!(
        two.ready().await.unwrap().call(req("ok")).await,
        Err(Error::Overloaded { .. })
    ));
}
