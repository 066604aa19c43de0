//! Resharding through aws-sdk-kinesis against the real gateway: SplitShard, MergeShards and
//! UpdateShardCount, ListShards filters, GetRecords at a closed shard's end (ChildShards, no
//! next iterator), a reader that follows children reads every record once, and the shard map
//! survives a restart of the server on the same data.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ScalingType, ShardFilter, ShardFilterType, ShardIteratorType};

use crate::common;

use common::TestServer;

async fn put(c: &Client, n: std::ops::Range<usize>) {
    for i in n {
        c.put_record()
            .stream_name("rs")
            .partition_key(format!("key-{}", i % 17))
            .data(Blob::new(format!("{i}")))
            .send()
            .await
            .unwrap();
    }
}

async fn list(c: &Client, filter: Option<ShardFilter>) -> Vec<aws_sdk_kinesis::types::Shard> {
    c.list_shards()
        .stream_name("rs")
        .set_shard_filter(filter)
        .send()
        .await
        .unwrap()
        .shards()
        .to_vec()
}

/// Reads a shard to its end with GetRecords: its records (as numbers) and the child shard
/// ids the last reply names (empty while the shard is open).
async fn read_shard(c: &Client, shard: &str) -> (Vec<usize>, Vec<String>) {
    let mut it = c
        .get_shard_iterator()
        .stream_name("rs")
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .map(str::to_owned);
    let mut out = Vec::new();
    while let Some(i) = it {
        let r = c.get_records().shard_iterator(i).send().await.unwrap();
        for rec in r.records() {
            out.push(
                std::str::from_utf8(rec.data().as_ref())
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
        if r.records().is_empty() && r.next_shard_iterator().is_some() {
            return (out, Vec::new()); // open shard, caught up
        }
        if r.next_shard_iterator().is_none() {
            let children = r
                .child_shards()
                .iter()
                .map(|c| c.shard_id().to_owned())
                .collect();
            return (out, children);
        }
        it = r.next_shard_iterator().map(str::to_owned);
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_merge_and_scale_through_the_sdk_survive_a_restart() {
    let server = TestServer::start().await;
    let c = server.sdk().await;
    c.create_stream()
        .stream_name("rs")
        .shard_count(2)
        .send()
        .await
        .unwrap();
    put(&c, 0..100).await;
    let shards = list(&c, None).await;
    assert_eq!(shards.len(), 2);
    let r0 = shards[0].hash_key_range().unwrap();
    let lo: u128 = r0.starting_hash_key().parse().unwrap();
    let hi: u128 = r0.ending_hash_key().parse().unwrap();
    c.split_shard()
        .stream_name("rs")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key(((lo + hi) / 2).to_string())
        .send()
        .await
        .unwrap();
    put(&c, 100..200).await;

    // Errors with AWS's types.
    let e = c
        .split_shard()
        .stream_name("rs")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("12345")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_resource_in_use_exception(),
        "{e:?}"
    );
    let e = c
        .split_shard()
        .stream_name("rs")
        .shard_to_split("shardId-000000000001")
        .new_starting_hash_key("1")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_invalid_argument_exception(),
        "{e:?}"
    );
    let e = c
        .merge_shards()
        .stream_name("rs")
        .shard_to_merge("shardId-000000000002")
        .adjacent_shard_to_merge("shardId-000000000001")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_invalid_argument_exception(),
        "{e:?}"
    );

    // Shards 3 and 1 touch: merge them; ids in the short form are accepted too.
    c.merge_shards()
        .stream_name("rs")
        .shard_to_merge("3")
        .adjacent_shard_to_merge("shardId-1")
        .send()
        .await
        .unwrap();
    put(&c, 200..300).await;

    // Restart on the same data: the map, the closed shards and their ends are kept.
    let server = server.restart().await;
    let c = server.sdk().await;
    let all = list(&c, None).await;
    let ids: Vec<&str> = all.iter().map(|s| s.shard_id()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003",
            "shardId-000000000004"
        ]
    );
    assert_eq!(all[4].parent_shard_id(), Some("shardId-000000000003"));
    assert_eq!(
        all[4].adjacent_parent_shard_id(),
        Some("shardId-000000000001")
    );
    assert!(
        all[0]
            .sequence_number_range()
            .unwrap()
            .ending_sequence_number()
            .is_some()
    );
    assert!(
        all[2]
            .sequence_number_range()
            .unwrap()
            .ending_sequence_number()
            .is_none()
    );
    assert_eq!(
        all[0]
            .sequence_number_range()
            .unwrap()
            .starting_sequence_number()
            .len(),
        56
    );
    let latest = list(
        &c,
        Some(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .unwrap(),
        ),
    )
    .await;
    let open: Vec<&str> = latest.iter().map(|s| s.shard_id()).collect();
    assert_eq!(open, ["shardId-000000000002", "shardId-000000000004"]);
    let horizon = list(
        &c,
        Some(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtTrimHorizon)
                .build()
                .unwrap(),
        ),
    )
    .await;
    let first: Vec<&str> = horizon.iter().map(|s| s.shard_id()).collect();
    assert_eq!(first, ["shardId-000000000000", "shardId-000000000001"]);
    let after = list(
        &c,
        Some(
            ShardFilter::builder()
                .r#type(ShardFilterType::AfterShardId)
                .shard_id("shardId-000000000002")
                .build()
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(after.len(), 2);

    // Uniform scaling to 4, then more records.
    let out = c
        .update_shard_count()
        .stream_name("rs")
        .target_shard_count(4)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    assert_eq!(out.current_shard_count(), Some(2));
    assert_eq!(out.target_shard_count(), Some(4));
    put(&c, 300..400).await;
    let summary = c
        .describe_stream_summary()
        .stream_name("rs")
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary
            .stream_description_summary()
            .unwrap()
            .open_shard_count(),
        4
    );
    let e = c
        .update_shard_count()
        .stream_name("rs")
        .target_shard_count(9)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_invalid_argument_exception(),
        "{e:?}"
    );

    // Read parents before children, following ChildShards from each closed shard's end.
    let all = list(&c, None).await;
    let parents: BTreeMap<String, Vec<String>> = all
        .iter()
        .map(|s| {
            let p = s
                .parent_shard_id()
                .into_iter()
                .chain(s.adjacent_parent_shard_id())
                .map(str::to_owned)
                .collect();
            (s.shard_id().to_owned(), p)
        })
        .collect();
    let mut done: HashSet<String> = HashSet::new();
    let mut seen = Vec::new();
    while done.len() < all.len() {
        let ready: Vec<String> = parents
            .iter()
            .filter(|(id, ps)| !done.contains(*id) && ps.iter().all(|p| done.contains(p)))
            .map(|(id, _)| id.clone())
            .collect();
        assert!(!ready.is_empty());
        for id in ready {
            let (records, children) = read_shard(&c, &id).await;
            let closed = all
                .iter()
                .find(|s| s.shard_id() == id)
                .unwrap()
                .sequence_number_range()
                .unwrap()
                .ending_sequence_number()
                .is_some();
            assert_eq!(
                closed,
                !children.is_empty(),
                "{id}: ChildShards exactly at a closed end"
            );
            for child in &children {
                assert!(parents[child].contains(&id), "{child} names {id} as parent");
            }
            seen.extend(records);
            done.insert(id);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..400).collect::<Vec<_>>(), "every record once");
}

/// Every failed model constraint of a reshard request in one ValidationException.
#[tokio::test]
async fn reshard_requests_report_every_failed_constraint_at_once() {
    let server = TestServer::start().await;
    let body = serde_json::json!({"StreamName": "bad name", "ShardToSplit": "", "NewStartingHashKey": "01"});
    let resp = reqwest::Client::new()
        .post(&server.url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.SplitShard")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["__type"], "ValidationException");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.starts_with("3 validation errors detected:"), "{msg}");
    for member in ["'streamName'", "'shardToSplit'", "'newStartingHashKey'"] {
        assert!(msg.contains(member), "{member} in {msg}");
    }
    let body =
        serde_json::json!({"StreamName": "s", "TargetShardCount": 0, "ScalingType": "DOUBLE"});
    let resp = reqwest::Client::new()
        .post(&server.url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.UpdateShardCount")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let msg = v["message"].as_str().unwrap();
    assert!(msg.starts_with("2 validation errors detected:"), "{msg}");
}
