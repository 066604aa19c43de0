//! Channels: CreateChannel, DescribeChannel, ListChannels, UpdateChannel and DeleteChannel over
//! the registry in [`crate::channels`]; `millrace up` runs each channel as a delivery.
//!
//! Each operation reads its members against the model first (`input.rs`: one
//! ValidationException for every violation), then checks meaning (InvalidArgumentException):
//! one source stream, ON_DEMAND, one destination (an S3 bucket or an S3 Tables table), a
//! bucket, table bucket and schema that `millrace up` maps, a key template the delivery engine
//! can render. A channel's ARN is `arn:aws:kinesis:REGION:ACCOUNT:channel/NAME/ID`; an ARN of
//! another account or region, or of an earlier channel of the same name, names nothing here.
//! CreateChannel answers CREATING and UpdateChannel UPDATING, as documented; DescribeChannel
//! shows what the runner reported since (see `crate::channels`).

mod input;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use millrace_stream::{Store, StreamMode};

use self::input::{CreateInput, ListInput, S3In, StreamFilterIn, StreamIn, TablesIn, UpdateInput};
use super::tags::check_tag_characters;
use crate::channels::{
    ChannelSpec, ChannelStatus, Compression, DATA_DIR_BUCKET, DEFAULT_FRESHNESS_SECS, DeadLetter,
    Logging, RecordFormat, S3Destination, Source, TablesDestination,
};
use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::Request;
use crate::server::Gateway;

/// ListChannels' page when `MaxResults` is absent, and its largest page.
const LIST_PAGE: usize = 100;
/// A ListChannels `NextToken` is good for 300 seconds.
const NEXT_TOKEN_TTL_MS: i64 = 300_000;
/// DataFreshnessInSeconds' range: the delivery engine's buffer interval (Firehose's 0-900 s).
const MAX_FRESHNESS_SECS: i64 = 900;
/// The Kinesis service key, which a channel may not use.
const SERVICE_KEY: &str = "alias/aws/kinesis";

pub async fn create(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let input = CreateInput::read(&req)?;
    let spec = new_spec(gw, &input)?;
    let (channels, stored) = (gw.channels.clone(), spec.clone());
    gw.blocking(move |store| {
        let source = stored.source.clone();
        channels.create(stored, || source_ready(store, &source))
    })
    .await?;
    tracing::info!(channel = %spec.name, stream = %spec.source.stream, bucket = %spec.destination.bucket, "created channel");
    Ok(Out::map([(
        "ChannelDescription",
        description(gw, &spec, (ChannelStatus::Creating, None)),
    )]))
}

pub fn describe(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let spec = find(gw, input::channel_arn(&req)?)?;
    let status = gw.channels.status(&spec);
    Ok(Out::map([(
        "ChannelDescription",
        description(gw, &spec, status),
    )]))
}

pub async fn update(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let input = UpdateInput::read(&req)?;
    let spec = find(gw, input.arn)?;
    let is_tables = spec.tables.is_some();
    if (is_tables && input.s3_freshness.is_some())
        || (!is_tables && input.tables_freshness.is_some())
    {
        return Err(ApiError::invalid(format!(
            "Channel {} delivers to {}: update DataFreshnessInSeconds with {}.",
            gw.channels.arn(&spec),
            if is_tables {
                "S3 Tables"
            } else {
                "a general purpose S3 bucket"
            },
            if is_tables {
                "S3TablesDestinationConfiguration"
            } else {
                "S3DestinationConfiguration"
            }
        )));
    }
    let asked = input.s3_freshness.or(input.tables_freshness);
    if asked.is_none() && input.logging.is_none() {
        return Err(ApiError::invalid(
            "UpdateChannel changes DataFreshnessInSeconds or LoggingConfiguration: give at \
             least one.",
        ));
    }
    let freshness = asked.map(check_freshness).transpose()?;
    let status = gw.channels.status(&spec).0;
    if matches!(status, ChannelStatus::Creating | ChannelStatus::Updating) {
        return Err(ApiError::new(
            ErrorCode::ResourceInUse,
            format!(
                "Channel {} is {}; update it once it is ACTIVE or FAILED.",
                gw.channels.arn(&spec),
                status.as_str()
            ),
        ));
    }
    let (channels, logging) = (gw.channels.clone(), input.logging);
    let (name, id) = (spec.name.clone(), spec.id.clone());
    let updated = gw
        .blocking(move |_| {
            channels.update(&name, &id, |s| {
                if let Some(f) = freshness {
                    s.destination.freshness_secs = f;
                }
                if let Some(l) = logging {
                    s.logging = l;
                }
                Ok(())
            })
        })
        .await?;
    tracing::info!(channel = %updated.name, revision = updated.revision, "updated channel");
    Ok(Out::map([(
        "ChannelDescription",
        description(gw, &updated, (ChannelStatus::Updating, None)),
    )]))
}

pub async fn delete(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let spec = find(gw, input::channel_arn(&req)?)?;
    let channels = gw.channels.clone();
    let (name, id) = (spec.name.clone(), spec.id.clone());
    gw.blocking(move |_| channels.delete(&name, &id)).await?;
    tracing::info!(channel = %spec.name, "deleted channel");
    Ok(Out::map([]))
}

pub fn list(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let ListInput {
        filters,
        max,
        token,
    } = ListInput::read(&req)?;
    let limit = max.map_or(LIST_PAGE, |m| (m as usize).min(LIST_PAGE));
    let now = millrace_stream::now_ms();
    let after = match token {
        None => None,
        Some(t) => Some(after_token(t, now)?),
    };
    let rest: Vec<ChannelSpec> = gw
        .channels
        .list()
        .into_iter()
        .filter(|s| after.as_deref().is_none_or(|a| s.name.as_str() > a))
        .filter(|s| filters.is_empty() || filters.iter().any(|f| reads(gw, s, f)))
        .collect();
    let page = &rest[..rest.len().min(limit)];
    let next = match page.last() {
        Some(last) if rest.len() > limit => Out::str(encode_token(&last.name, now)),
        _ => Out::Null,
    };
    let items = page.iter().map(|s| summary(gw, s)).collect();
    Ok(Out::map([
        ("ChannelSummaries", Out::List(items)),
        ("NextToken", next),
    ]))
}

/// Whether channel `s` reads the stream of filter `f` (and, when given, of its creation
/// second).
fn reads(gw: &Gateway, s: &ChannelSpec, f: &StreamFilterIn) -> bool {
    f.arn == gw.arn(&s.source.stream)
        && f.created_ms
            .is_none_or(|ms| ms.div_euclid(1000) == s.source.stream_created_ms.div_euclid(1000))
}

/// A `NextToken`: the last name listed and when the token was issued.
fn encode_token(last: &str, issued_ms: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{last}\n{issued_ms}"))
}

/// The name a `NextToken` continues after; expired after [`NEXT_TOKEN_TTL_MS`].
fn after_token(token: &str, now_ms: i64) -> Result<String, ApiError> {
    let decoded = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|raw| {
            let (last, issued) = raw.split_once('\n')?;
            Some((last.to_owned(), issued.parse::<i64>().ok()?))
        });
    let Some((last, issued)) = decoded else {
        return Err(ApiError::invalid(format!("Invalid NextToken: {token}")));
    };
    if now_ms - issued > NEXT_TOKEN_TTL_MS {
        return Err(ApiError::new(
            ErrorCode::ExpiredNextToken,
            format!("The NextToken {token} has expired."),
        ));
    }
    Ok(last)
}

/// The channel a `ChannelARN` names now.
pub(crate) fn find(gw: &Gateway, arn: &str) -> Result<ChannelSpec, ApiError> {
    let ch = &gw.channels;
    let prefix = format!("arn:aws:kinesis:{}:{}:channel/", ch.region(), ch.account());
    arn.strip_prefix(&prefix)
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(name, id)| ch.get(name).filter(|s| s.id == id))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("Channel {arn} under account {} not found.", ch.account()),
            )
        })
}

/// CreateChannel's meaning checked, as the spec to store.
fn new_spec(gw: &Gateway, input: &CreateInput) -> Result<ChannelSpec, ApiError> {
    if input.name.starts_with('.') {
        return Err(ApiError::invalid(format!(
            "Channel name '{}' starts with '.': millrace names the channel's objects and \
             state after it, so it may not.",
            input.name
        )));
    }
    let stream_in = one_stream(input)?;
    if let Some(t) = &input.tables {
        if input.s3.is_some() {
            return Err(ApiError::invalid(
                "Specify either S3DestinationConfiguration or S3TablesDestinationConfiguration, \
                 not both.",
            ));
        }
        return tables_spec(gw, input, stream_in, t);
    }
    let s3 = destination(input)?;
    let record_format = record_format(stream_in)?;
    check_tag_characters(&input.tags)?;
    if input.kms_key_id == Some(SERVICE_KEY) {
        return Err(ApiError::invalid(format!(
            "EncryptionConfiguration.KeyId cannot be the Kinesis service key ({SERVICE_KEY}): \
             use a customer managed key."
        )));
    }
    let destination = s3_destination(gw, input.name, s3)?;
    let (stream, stream_created_ms) = source_stream(gw, stream_in.arn)?;
    Ok(ChannelSpec {
        name: input.name.to_owned(),
        id: millrace_common::ids::uuid_v4(),
        created_ms: millrace_stream::now_ms(),
        revision: 0,
        role_arn: input.role_arn.to_owned(),
        source: Source {
            stream,
            stream_created_ms,
            record_format,
        },
        destination,
        kms_key_id: input.kms_key_id.map(str::to_owned),
        logging: input.logging.clone(),
        tags: input.tags.clone(),
        tables: None,
    })
}

/// A channel into an Iceberg table: the table bucket and the schema must be mapped by `up`'s
/// config (`[table_buckets]`, `[schemas]`: there is no Glue Schema Registry here); its
/// dead-letter bucket, mapped like any bucket, takes the records that do not fit.
fn tables_spec(
    gw: &Gateway,
    input: &CreateInput,
    stream_in: &StreamIn,
    t: &TablesIn,
) -> Result<ChannelSpec, ApiError> {
    let [table] = t.tables.as_slice() else {
        return Err(ApiError::invalid(format!(
            "A channel writes one table; S3TablesConfigurationList has {} entries.",
            t.tables.len()
        )));
    };
    let record_format = match stream_in.format {
        "JSON" => RecordFormat::Json,
        "GSR_JSON" => RecordFormat::GsrJson,
        other => {
            return Err(ApiError::invalid(format!(
                "RecordFormatType {other} is not supported for streaming table (S3 Tables) \
                 destinations: use JSON or GSR_JSON."
            )));
        }
    };
    let schema_arn = stream_in.schema_arn.ok_or_else(|| {
        ApiError::invalid(
            "GSRSchemaARN is required when the channel destination is a streaming table.",
        )
    })?;
    if !gw.channels.schema_known(schema_arn) {
        return Err(ApiError::invalid(format!(
            "Schema {schema_arn} is not known: millrace has no Glue Schema Registry; map the ARN \
             to a JSON Schema file in the [schemas] table of millrace up's config \
             (schemas.\"{schema_arn}\")."
        )));
    }
    let table_bucket = input::table_bucket_of_arn(table.bucket_arn).expect("checked");
    if !gw.channels.table_bucket_known(table_bucket) {
        return Err(ApiError::invalid(format!(
            "Table bucket {table_bucket} ({}) is not mapped: add `{table_bucket} = \"<folder>\"` \
             to the [table_buckets] table of millrace up's config (table_buckets.{table_bucket}).",
            table.bucket_arn
        )));
    }
    let freshness = t
        .freshness
        .map_or(Ok(DEFAULT_FRESHNESS_SECS), check_freshness)?;
    let dl = &t.dead_letter;
    let dl_bucket = input::bucket_of_arn(dl.bucket_arn).expect("checked");
    check_bucket_mapped(gw, input.name, dl_bucket, dl.bucket_arn)?;
    let account = gw.channels.account();
    if dl.owner != account {
        return Err(ApiError::invalid(format!(
            "ExpectedBucketOwner {} does not own the bucket: millrace's buckets belong to \
             account {account}.",
            dl.owner
        )));
    }
    let (stream, stream_created_ms) = source_stream(gw, stream_in.arn)?;
    Ok(ChannelSpec {
        name: input.name.to_owned(),
        id: millrace_common::ids::uuid_v4(),
        created_ms: millrace_stream::now_ms(),
        revision: 0,
        role_arn: input.role_arn.to_owned(),
        source: Source {
            stream,
            stream_created_ms,
            record_format,
        },
        destination: S3Destination {
            bucket: dl_bucket.to_owned(),
            bucket_arn: dl.bucket_arn.to_owned(),
            expected_owner: dl.owner.to_owned(),
            output_key_template: None,
            storage_class: None,
            compression: Compression::None,
            freshness_secs: freshness,
            dead_letter: Some(DeadLetter {
                bucket_arn: dl.bucket_arn.to_owned(),
                expected_owner: dl.owner.to_owned(),
                error_output_prefix: dl.prefix.map(str::to_owned),
            }),
        },
        kms_key_id: input.kms_key_id.map(str::to_owned),
        logging: input.logging.clone(),
        tags: input.tags.clone(),
        tables: Some(TablesDestination {
            table_bucket: table_bucket.to_owned(),
            table_bucket_arn: table.bucket_arn.to_owned(),
            namespace: table.namespace.to_owned(),
            table: table.table.to_owned(),
            compression: table.compression.to_owned(),
            hour_partitions: table
                .hour_partitions
                .iter()
                .map(|s| s.to_string())
                .collect(),
            schema_arn: schema_arn.to_owned(),
        }),
    })
}

/// The S3 destination (S3 Tables was taken care of before).
fn destination<'a, 'b>(input: &'b CreateInput<'a>) -> Result<&'b S3In<'a>, ApiError> {
    input.s3.as_ref().ok_or_else(|| {
        ApiError::invalid(
            "Either S3DestinationConfiguration or S3TablesDestinationConfiguration must be \
             provided.",
        )
    })
}

fn one_stream<'a, 'b>(input: &'b CreateInput<'a>) -> Result<&'b StreamIn<'a>, ApiError> {
    match input.streams.as_slice() {
        [one] => Ok(one),
        many => Err(ApiError::invalid(format!(
            "A channel reads one stream; StreamConfigurationList has {} entries.",
            many.len()
        ))),
    }
}

fn record_format(s: &StreamIn) -> Result<RecordFormat, ApiError> {
    if s.schema_arn.is_some() {
        return Err(ApiError::invalid(
            "GSRSchemaARN applies to streaming table (S3 Tables) destinations only.",
        ));
    }
    match s.format {
        "JSON" => Ok(RecordFormat::Json),
        "STRING" => Ok(RecordFormat::String),
        "BYTE_ARRAY" => Ok(RecordFormat::ByteArray),
        other => Err(ApiError::invalid(format!(
            "RecordFormatType {other} is supported only for streaming table (S3 Tables) \
             destinations; a general purpose S3 destination takes JSON, STRING or BYTE_ARRAY."
        ))),
    }
}

fn s3_destination(gw: &Gateway, channel: &str, s3: &S3In) -> Result<S3Destination, ApiError> {
    let freshness = s3
        .freshness
        .map_or(Ok(DEFAULT_FRESHNESS_SECS), check_freshness)?;
    let account = gw.channels.account();
    let dead_letter = s3.dead_letter.as_ref().map(|d| DeadLetter {
        bucket_arn: d.bucket_arn.to_owned(),
        expected_owner: d.owner.to_owned(),
        error_output_prefix: d.prefix.map(str::to_owned),
    });
    for owner in std::iter::once(s3.owner).chain(dead_letter.iter().map(|d| &*d.expected_owner)) {
        if owner != account {
            return Err(ApiError::invalid(format!(
                "ExpectedBucketOwner {owner} does not own the bucket: millrace's buckets \
                 belong to account {account}."
            )));
        }
    }
    if let Some(problem) = s3
        .key_template
        .and_then(crate::channels::key_template_problem)
    {
        return Err(ApiError::invalid(problem));
    }
    let bucket = input::bucket_of_arn(s3.bucket_arn).expect("checked");
    if let Some(d) = &dead_letter {
        let dl_bucket = input::bucket_of_arn(&d.bucket_arn).expect("checked");
        check_bucket_mapped(gw, channel, dl_bucket, &d.bucket_arn)?;
    }
    check_bucket_mapped(gw, channel, bucket, s3.bucket_arn)?;
    Ok(S3Destination {
        bucket: bucket.to_owned(),
        bucket_arn: s3.bucket_arn.to_owned(),
        expected_owner: s3.owner.to_owned(),
        output_key_template: s3.key_template.map(str::to_owned),
        storage_class: s3.storage_class.map(str::to_owned),
        compression: match s3.compression {
            "GZIP" => Compression::Gzip,
            "ZSTD" => Compression::Zstd,
            _ => Compression::None,
        },
        freshness_secs: freshness,
        dead_letter,
    })
}

fn check_bucket_mapped(
    gw: &Gateway,
    channel: &str,
    bucket: &str,
    bucket_arn: &str,
) -> Result<(), ApiError> {
    if gw.channels.bucket_known(bucket) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "Bucket {bucket} ({bucket_arn}) of channel {channel} is not mapped to a lake: add \
         `{bucket} = \"<folder, file:// or s3://bucket/prefix>\"` to the [buckets] table of \
         millrace up's config (buckets.{bucket}). Bucket {DATA_DIR_BUCKET} is the data dir's \
         own lake."
    )))
}

fn check_freshness(secs: i64) -> Result<u32, ApiError> {
    if (0..=MAX_FRESHNESS_SECS).contains(&secs) {
        return Ok(secs as u32);
    }
    Err(ApiError::invalid(format!(
        "DataFreshnessInSeconds {secs} is out of range: between 0 and {MAX_FRESHNESS_SECS}."
    )))
}

/// The stream a `StreamARN` names, ON_DEMAND: its name and creation time.
fn source_stream(gw: &Gateway, arn: &str) -> Result<(String, i64), ApiError> {
    let not_found = || {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Stream {arn} under account {} not found.",
                gw.channels.account()
            ),
        )
    };
    let name = arn
        .strip_prefix(&gw.arn(""))
        .filter(|n| crate::request::validate_stream_name(n).is_ok())
        .ok_or_else(not_found)?;
    let stream = gw.store.stream(name).map_err(|_| not_found())?;
    let meta = stream.meta();
    if meta.mode != StreamMode::OnDemand {
        return Err(ApiError::invalid(format!(
            "Stream {arn} is {}: channels are supported only for streams in ON_DEMAND \
             capacity mode.",
            meta.mode.as_str()
        )));
    }
    Ok((name.to_owned(), meta.created_ms))
}

/// Under the registry's lock: the source stream is still the one checked (same creation) and
/// ON_DEMAND.
fn source_ready(store: &Store, source: &Source) -> Result<(), ApiError> {
    let meta = store.stream(&source.stream)?.meta();
    if meta.created_ms != source.stream_created_ms || meta.mode != StreamMode::OnDemand {
        return Err(ApiError::new(
            ErrorCode::ResourceInUse,
            format!(
                "Stream {} changed while the channel was created; try again.",
                source.stream
            ),
        ));
    }
    Ok(())
}

fn description(gw: &Gateway, spec: &ChannelSpec, status: (ChannelStatus, Option<String>)) -> Out {
    let mut f = identity(gw, spec, status);
    f.push(("ServiceExecutionRoleARN", Out::str(&spec.role_arn)));
    f.push((
        "StreamConfigurationList",
        Out::List(vec![Out::Map(vec![
            ("StreamARN", Out::str(gw.arn(&spec.source.stream))),
            (
                "StreamCreationTimestamp",
                Out::Time(spec.source.stream_created_ms),
            ),
            ("RecordConfiguration", record_configuration(spec)),
        ])]),
    ));
    match &spec.tables {
        Some(t) => f.push(("S3TablesDestinationConfiguration", tables_out(spec, t))),
        None => f.push(("S3DestinationConfiguration", s3_out(spec))),
    }
    if let Some(key) = &spec.kms_key_id {
        f.push((
            "EncryptionConfiguration",
            Out::map([
                ("EncryptionType", Out::str("KMS")),
                ("KeyId", Out::str(key)),
            ]),
        ));
    }
    f.push(("LoggingConfiguration", logging_out(&spec.logging)));
    Out::Map(f)
}

/// Name, ARN, id, status (and reason) and creation time: what a description and a summary
/// share.
fn identity(
    gw: &Gateway,
    spec: &ChannelSpec,
    (status, reason): (ChannelStatus, Option<String>),
) -> Vec<(&'static str, Out)> {
    let mut f = vec![
        ("ChannelName", Out::str(&spec.name)),
        ("ChannelARN", Out::str(gw.channels.arn(spec))),
        ("ChannelId", Out::str(&spec.id)),
        ("ChannelStatus", Out::str(status.as_str())),
    ];
    if let Some(r) = reason {
        f.push(("ChannelStatusReason", Out::str(r)));
    }
    f.push(("ChannelCreationTimestamp", Out::Time(spec.created_ms)));
    f
}

fn summary(gw: &Gateway, spec: &ChannelSpec) -> Out {
    let mut f = identity(gw, spec, gw.channels.status(spec));
    f.push((
        "ChannelDestinationType",
        Out::str(if spec.tables.is_some() {
            "S3_TABLES"
        } else {
            "S3"
        }),
    ));
    f.push((
        "Streams",
        Out::List(vec![Out::map([
            ("StreamARN", Out::str(gw.arn(&spec.source.stream))),
            (
                "StreamCreationTimestamp",
                Out::Time(spec.source.stream_created_ms),
            ),
        ])]),
    ));
    Out::Map(f)
}

fn s3_out(spec: &ChannelSpec) -> Out {
    let d = &spec.destination;
    let mut storage = vec![
        ("BucketARN", Out::str(&d.bucket_arn)),
        ("ExpectedBucketOwner", Out::str(&d.expected_owner)),
    ];
    if let Some(t) = &d.output_key_template {
        storage.push(("OutputKeyTemplate", Out::str(t)));
    }
    if let Some(c) = &d.storage_class {
        storage.push(("StorageClass", Out::str(c)));
    }
    storage.push(("CompressionType", Out::str(d.compression.as_str())));
    let dl = spec.dead_letter();
    let mut dead_letter = vec![
        ("BucketARN", Out::str(dl.bucket_arn)),
        ("ExpectedBucketOwner", Out::str(dl.expected_owner)),
    ];
    if let Some(p) = dl.error_output_prefix {
        dead_letter.push(("ErrorOutputPrefix", Out::str(p)));
    }
    Out::map([
        ("DataFreshnessInSeconds", Out::Int(d.freshness_secs.into())),
        ("DeadLetterQueueS3Configuration", Out::Map(dead_letter)),
        ("StorageConfiguration", Out::Map(storage)),
    ])
}

fn record_configuration(spec: &ChannelSpec) -> Out {
    let mut f = vec![(
        "RecordFormatType",
        Out::str(spec.source.record_format.as_str()),
    )];
    if let Some(t) = &spec.tables {
        f.push(("GSRSchemaARN", Out::str(&t.schema_arn)));
    }
    Out::Map(f.into_iter().collect())
}

fn tables_out(spec: &ChannelSpec, t: &TablesDestination) -> Out {
    let dl = spec.dead_letter();
    let mut dead_letter = vec![
        ("BucketARN", Out::str(dl.bucket_arn)),
        ("ExpectedBucketOwner", Out::str(dl.expected_owner)),
    ];
    if let Some(p) = dl.error_output_prefix {
        dead_letter.push(("ErrorOutputPrefix", Out::str(p)));
    }
    let mut table = vec![
        ("TableBucketARN", Out::str(&t.table_bucket_arn)),
        ("Namespace", Out::str(&t.namespace)),
        ("TableName", Out::str(&t.table)),
        ("CompressionType", Out::str(&t.compression)),
    ];
    if !t.hour_partitions.is_empty() {
        let fields = t
            .hour_partitions
            .iter()
            .map(|c| {
                Out::map([
                    ("Transform", Out::str("TIME_HOUR")),
                    ("SourceName", Out::str(c)),
                ])
            })
            .collect();
        table.push((
            "PartitionSpec",
            Out::map([("PartitionFields", Out::List(fields))]),
        ));
    }
    Out::map([
        (
            "DataFreshnessInSeconds",
            Out::Int(spec.destination.freshness_secs.into()),
        ),
        ("DeadLetterQueueS3Configuration", Out::Map(dead_letter)),
        (
            "S3TablesConfigurationList",
            Out::List(vec![Out::Map(table)]),
        ),
    ])
}

fn logging_out(l: &Logging) -> Out {
    let mut cw = vec![("Enabled", Out::Bool(l.enabled))];
    if let Some(g) = &l.log_group {
        cw.push(("LogGroupName", Out::str(g)));
    }
    if let Some(s) = &l.log_stream {
        cw.push(("LogStreamName", Out::str(s)));
    }
    Out::map([("CloudWatchLogs", Out::Map(cw))])
}
