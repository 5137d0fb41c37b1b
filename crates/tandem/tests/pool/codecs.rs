//! Each codec round trips through a worker.

use serde_json::json;
use tandem::{Codec, Payload, Request};

use crate::apps::{builder, finish, svc_dir, within};

#[tokio::test]
async fn pool_round_trips_each_codec() {
    let dir = svc_dir("codecs");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let value = json!({"amount": 12, "tags": ["a", "b"], "nested": {"ok": true}});
        for method in ["echo", "aecho"] {
            for payload in [
                Payload::json(&value).unwrap(),
                Payload::msgpack(&value).unwrap(),
            ] {
                let codec = payload.codec();
                let resp = pool.call(Request::new(method, payload)).await.unwrap();
                assert_eq!(resp.payload().codec(), codec);
                let back: serde_json::Value = resp.decode().unwrap();
                assert_eq!(back, value, "{method} via {codec}");
            }
            let raw = vec![0u8, 159, 146, 150, 255];
            let resp = pool
                .call(Request::new(method, Payload::raw(raw.clone())))
                .await
                .unwrap();
            assert_eq!(resp.payload().codec(), Codec::Raw);
            assert_eq!(resp.payload().bytes().as_ref(), raw.as_slice());
        }
        assert!(pool.methods().contains(&"echo".to_owned()));
        finish(pool).await;
    })
    .await;
}
