//! The delivery stream operations: create, delete, describe, list, update the destination,
//! tags, and server-side encryption (state only, as for Kinesis streams until encryption at
//! rest lands).

use std::collections::BTreeMap;

use millrace_gateway::ApiError;
use millrace_gateway::protocol::Out;
use millrace_gateway::request::{Checks, Request};
use millrace_stream::{Store, StreamError, StreamMode};

use crate::error::FirehoseError;
use crate::input::{self, CreateInput, UpdateInput};
use crate::spec::{DESTINATION_ID, DeliveryStreamSpec, Encryption, KinesisSource, SourceKind};
use crate::{Firehose, blocking, describe, destination};

/// Delivery streams per account and region (Firehose's default quota).
const MAX_DELIVERY_STREAMS: usize = 5000;
const MAX_TAGS: usize = 50;

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::Invalid(message.into())
}

pub async fn create(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let input = CreateInput::read(&req)?;
    let spec = new_spec(fh, &input)?;
    let arn = fh.registry.arn(&spec);
    let fh2 = fh.clone();
    blocking(move || {
        if fh2.registry.list().len() >= MAX_DELIVERY_STREAMS {
            return Err(FirehoseError::LimitExceeded(format!(
                "You have already consumed your firehose quota of {MAX_DELIVERY_STREAMS} \
                 hoses. Firehose names: {}",
                spec.name
            )));
        }
        let buffers = fh2.buffers.clone();
        let kind = spec.kind;
        let buffer = spec.buffer_stream();
        let sealed = seal_key(&spec.encryption);
        fh2.registry.create(spec, move || {
            if kind == SourceKind::DirectPut && buffers.stream(&buffer).is_err() {
                buffers
                    .create(
                        &buffer,
                        StreamMode::Provisioned,
                        Some(crate::put::BUFFER_SHARDS),
                        24,
                        BTreeMap::new(),
                    )
                    .map_err(|e| FirehoseError::Unavailable(e.to_string()))?;
            }
            if kind == SourceKind::DirectPut {
                seal_buffer(&buffers, &buffer, sealed.as_deref())?;
            }
            Ok(())
        })
    })
    .await?;
    Ok(Out::map([("DeliveryStreamARN", Out::str(arn))]))
}

fn new_spec(fh: &Firehose, input: &CreateInput) -> Result<DeliveryStreamSpec, FirehoseError> {
    if input.name.starts_with('.') {
        return Err(invalid(format!(
            "Delivery stream name {:?}: millrace does not take names that start with '.' \
             (they name folders).",
            input.name
        )));
    }
    if let Some(d) = input.other_destinations.first() {
        return Err(invalid(format!(
            "{d} is not supported: millrace delivers to S3 destinations (into its lake or a \
             mapped bucket); use ExtendedS3DestinationConfiguration."
        )));
    }
    let (extended, s3) = input.s3.as_ref().ok_or_else(|| {
        invalid("A destination is required: give ExtendedS3DestinationConfiguration.")
    })?;
    let (kind, kinesis) = match (input.kind.as_str(), &input.kinesis) {
        ("DirectPut", None) => (SourceKind::DirectPut, None),
        ("DirectPut", Some(_)) => {
            return Err(invalid(
                "KinesisStreamSourceConfiguration is only for DeliveryStreamType \
                 KinesisStreamAsSource.",
            ));
        }
        ("KinesisStreamAsSource", Some((arn, role))) => (
            SourceKind::KinesisStreamAsSource,
            Some(kinesis_source(fh, arn, role)?),
        ),
        ("KinesisStreamAsSource", None) => {
            return Err(invalid(
                "DeliveryStreamType KinesisStreamAsSource needs KinesisStreamSourceConfiguration.",
            ));
        }
        (other, _) => {
            return Err(invalid(format!(
                "DeliveryStreamType {other} is not supported: millrace takes DirectPut and \
                 KinesisStreamAsSource."
            )));
        }
    };
    if kind == SourceKind::KinesisStreamAsSource && input.throughput_hint_mb.is_some() {
        return Err(invalid(
            "DirectPutSourceConfiguration is only for DeliveryStreamType DirectPut.",
        ));
    }
    let destination = destination::build(&fh.registry, s3, *extended, None)?;
    let encryption = match &input.encryption {
        Some(e) => encryption(kind, &e.0, e.1.as_deref())?,
        None => Encryption::default(),
    };
    let now = millrace_common::time::now_ms();
    Ok(DeliveryStreamSpec {
        name: input.name.clone(),
        id: millrace_common::ids::uuid_v4(),
        created_ms: now,
        updated_ms: now,
        version: 1,
        kind,
        kinesis,
        throughput_hint_mb: input.throughput_hint_mb,
        destination,
        encryption,
        tags: input.tags.clone(),
    })
}

/// A Kinesis stream of this store, by ARN of this account and region.
fn kinesis_source(fh: &Firehose, arn: &str, role: &str) -> Result<KinesisSource, FirehoseError> {
    let (region, account, name) = input::stream_of_arn(arn).expect("checked against the model");
    let here = (region == fh.registry.region() && account == fh.registry.account())
        .then(|| fh.kinesis.stream(name).ok())
        .flatten();
    if here.is_none() {
        return Err(invalid(format!(
            "KinesisStreamARN {arn}: no such stream in account {} region {}.",
            fh.registry.account(),
            fh.registry.region()
        )));
    }
    Ok(KinesisSource {
        stream_arn: arn.to_owned(),
        stream: name.to_owned(),
        role_arn: role.to_owned(),
    })
}

/// The keyring key a DirectPut delivery stream's buffer is sealed under: the customer's
/// KeyARN, or for AWS_OWNED_CMK the managed `alias/aws/firehose` (made on first use); `None`
/// when encryption is off.
fn seal_key(e: &Encryption) -> Option<String> {
    (e.status == "ENABLED").then(|| {
        e.key_arn
            .clone()
            .unwrap_or_else(|| "alias/aws/firehose".to_owned())
    })
}

/// Seals the records a DirectPut buffer takes from now on under `key` (or writes them in the
/// clear again with `None`): encryption at rest of the records waiting for delivery.
fn seal_buffer(buffers: &Store, buffer: &str, key: Option<&str>) -> Result<(), FirehoseError> {
    let stream = buffers
        .stream(buffer)
        .map_err(|e| FirehoseError::Unavailable(e.to_string()))?;
    let kms = |e: StreamError| match e {
        StreamError::KeyNotFound(m) | StreamError::KeyUnavailable(m) => FirehoseError::Kms(m),
        other => FirehoseError::Unavailable(other.to_string()),
    };
    match (key, stream.meta().encryption) {
        (Some(key), Some(now)) if now.key_id == key => Ok(()),
        (Some(key), _) => stream.start_encryption(key).map_err(kms),
        (None, Some(now)) => stream.stop_encryption(&now.key_id).map_err(kms),
        (None, None) => Ok(()),
    }
}

fn encryption(
    kind: SourceKind,
    key_type: &str,
    key_arn: Option<&str>,
) -> Result<Encryption, FirehoseError> {
    if kind == SourceKind::KinesisStreamAsSource {
        return Err(invalid(
            "Server-side encryption of a delivery stream whose source is a Kinesis stream is \
             set on the stream (StartStreamEncryption), not on the delivery stream.",
        ));
    }
    match (key_type, key_arn) {
        ("CUSTOMER_MANAGED_CMK", None) => Err(invalid(
            "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.",
        )),
        ("AWS_OWNED_CMK", Some(_)) => Err(invalid(
            "KeyARN must not be given when KeyType is AWS_OWNED_CMK.",
        )),
        _ => Ok(Encryption {
            status: "ENABLED".into(),
            key_type: Some(key_type.to_owned()),
            key_arn: key_arn.map(str::to_owned),
        }),
    }
}

pub async fn delete(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = input::read_name(&mut c, &req)?;
    c.finish()?;
    let name = name.expect("checked");
    let fh2 = fh.clone();
    blocking(move || fh2.registry.delete(&name)).await?;
    Ok(Out::Map(vec![]))
}

pub fn describe(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = input::read_name(&mut c, &req)?;
    if let Some(l) = req.opt_int("Limit")? {
        c.range("Limit", l, 1, 10000);
    }
    if let Some(d) = req.opt_str("ExclusiveStartDestinationId")? {
        c.len("ExclusiveStartDestinationId", d, 1, 100);
    }
    c.finish()?;
    let spec = fh.registry.get(&name.expect("checked"))?;
    Ok(Out::map([(
        "DeliveryStreamDescription",
        describe::description(&fh.registry, &spec),
    )]))
}

pub fn list(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let limit = req.opt_int("Limit")?;
    if let Some(l) = limit {
        c.range("Limit", l, 1, 10000);
    }
    let kind = req.opt_str("DeliveryStreamType")?;
    if let Some(k) = kind {
        c.one_of(
            "DeliveryStreamType",
            k,
            &[
                "DirectPut",
                "KinesisStreamAsSource",
                "MSKAsSource",
                "DatabaseAsSource",
            ],
        );
    }
    let start = req.opt_str("ExclusiveStartDeliveryStreamName")?;
    if let Some(s) = start {
        input::delivery_stream_name(&mut c, "ExclusiveStartDeliveryStreamName", s);
    }
    c.finish()?;
    let limit = limit.unwrap_or(10) as usize;
    let names: Vec<String> = fh
        .registry
        .list()
        .into_iter()
        .filter(|s| kind.is_none_or(|k| s.kind.as_str() == k))
        .map(|s| s.name)
        .filter(|n| start.is_none_or(|s| n.as_str() > s))
        .collect();
    let more = names.len() > limit;
    Ok(Out::map([
        (
            "DeliveryStreamNames",
            Out::List(names.into_iter().take(limit).map(Out::Str).collect()),
        ),
        ("HasMoreDeliveryStreams", Out::Bool(more)),
    ]))
}

pub async fn update_destination(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let input = UpdateInput::read(&req)?;
    if let Some(d) = input.other_destinations.first() {
        return Err(invalid(format!(
            "{} is not supported: millrace delivers to S3 destinations.",
            d.replace("Configuration", "Update")
        ))
        .into());
    }
    let Some((extended, s3)) = input.s3.clone() else {
        return Err(invalid("Give ExtendedS3DestinationUpdate (or S3DestinationUpdate).").into());
    };
    let fh2 = fh.clone();
    blocking(move || {
        let registry = &fh2.registry;
        registry.update(&input.name, true, |spec| {
            if spec.version.to_string() != input.version {
                return Err(FirehoseError::ConcurrentModification(format!(
                    "Cannot update firehose: {} since the current version id: {} and \
                     specified version id: {} do not match",
                    spec.name, spec.version, input.version
                )));
            }
            if input.destination_id != DESTINATION_ID {
                return Err(invalid(format!(
                    "Destination Id {} not found; the delivery stream's destination is {}.",
                    input.destination_id, DESTINATION_ID
                )));
            }
            spec.destination =
                destination::build(registry, &s3, extended, Some(&spec.destination))?;
            Ok(())
        })
    })
    .await?;
    Ok(Out::Map(vec![]))
}

pub async fn tag(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = input::read_name(&mut c, &req)?;
    let list = c.required("Tags", req.opt_list("Tags")?);
    let tags = list
        .map(|l| input::read_tag_list(&mut c, l, "Tags", 1, MAX_TAGS))
        .unwrap_or_default();
    c.finish()?;
    let name = name.expect("checked");
    let fh2 = fh.clone();
    blocking(move || {
        fh2.registry.update(&name, false, |spec| {
            let mut next = spec.tags.clone();
            next.extend(tags);
            if next.len() > MAX_TAGS {
                return Err(FirehoseError::LimitExceeded(format!(
                    "A delivery stream takes at most {MAX_TAGS} tags; this would make {}.",
                    next.len()
                )));
            }
            spec.tags = next;
            Ok(())
        })
    })
    .await?;
    Ok(Out::Map(vec![]))
}

pub async fn untag(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = input::read_name(&mut c, &req)?;
    let keys = c.required("TagKeys", req.opt_list("TagKeys")?);
    let keys: Vec<String> = keys
        .map(|l| {
            if l.is_empty() || l.len() > MAX_TAGS {
                c.fail(
                    "tagKeys",
                    &format!("<list of {}>", l.len()),
                    &format!("Member must have length between 1 and {MAX_TAGS}"),
                );
            }
            l.iter()
                .filter_map(|k| k.as_str())
                .filter(|k| c.len("TagKeys", k, 1, 128))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    c.finish()?;
    let name = name.expect("checked");
    let fh2 = fh.clone();
    blocking(move || {
        fh2.registry.update(&name, false, |spec| {
            for k in &keys {
                spec.tags.remove(k);
            }
            Ok(())
        })
    })
    .await?;
    Ok(Out::Map(vec![]))
}

pub fn list_tags(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = input::read_name(&mut c, &req)?;
    let start = req.opt_str("ExclusiveStartTagKey")?;
    if let Some(s) = start {
        c.len("ExclusiveStartTagKey", s, 1, 128);
    }
    let limit = req.opt_int("Limit")?;
    if let Some(l) = limit {
        c.range("Limit", l, 1, 50);
    }
    c.finish()?;
    let spec = fh.registry.get(&name.expect("checked"))?;
    let limit = limit.unwrap_or(50) as usize;
    let tags: Vec<(&String, &String)> = spec
        .tags
        .iter()
        .filter(|(k, _)| start.is_none_or(|s| k.as_str() > s))
        .collect();
    let more = tags.len() > limit;
    Ok(Out::map([
        (
            "Tags",
            Out::List(
                tags.into_iter()
                    .take(limit)
                    .map(|(k, v)| Out::map([("Key", Out::str(k)), ("Value", Out::str(v))]))
                    .collect(),
            ),
        ),
        ("HasMoreTags", Out::Bool(more)),
    ]))
}

pub async fn start_encryption(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = input::read_name(&mut c, &req)?;
    let config = req.opt_object("DeliveryStreamEncryptionConfigurationInput")?;
    let key = config.and_then(|m| {
        let key_type = m.get("KeyType").and_then(|v| v.as_str());
        let key_type = c.required(
            "DeliveryStreamEncryptionConfigurationInput.KeyType",
            key_type,
        )?;
        c.one_of(
            "DeliveryStreamEncryptionConfigurationInput.KeyType",
            key_type,
            &["AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"],
        );
        let arn = m.get("KeyARN").and_then(|v| v.as_str());
        Some((key_type.to_owned(), arn.map(str::to_owned)))
    });
    c.finish()?;
    let (key_type, key_arn) = key.unwrap_or_else(|| ("AWS_OWNED_CMK".into(), None));
    let name = name.expect("checked");
    let fh2 = fh.clone();
    blocking(move || {
        fh2.registry.update(&name, false, |spec| {
            spec.encryption = encryption(spec.kind, &key_type, key_arn.as_deref())?;
            seal_buffer(
                &fh2.buffers,
                &spec.buffer_stream(),
                seal_key(&spec.encryption).as_deref(),
            )
        })
    })
    .await?;
    Ok(Out::Map(vec![]))
}

pub async fn stop_encryption(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let name = input::name_only(&req)?;
    let fh2 = fh.clone();
    blocking(move || {
        fh2.registry.update(&name, false, |spec| {
            if spec.kind == SourceKind::KinesisStreamAsSource {
                return Err(invalid(
                    "This delivery stream reads a Kinesis stream: its encryption is the \
                     stream's.",
                ));
            }
            spec.encryption = Encryption::default();
            seal_buffer(&fh2.buffers, &spec.buffer_stream(), None)
        })
    })
    .await?;
    Ok(Out::Map(vec![]))
}
