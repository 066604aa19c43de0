use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// ListStreams: names in order, paged by `Limit` with `ExclusiveStartStreamName` or a
/// `NextToken` (the last name returned, encoded).
pub fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let limit = req.int_in(&mut c, "Limit", 1, super::MAX_LIST_LIMIT)?;
    req.str_len(&mut c, "NextToken", 1, 1_048_576)?;
    if let Some(start) = req.opt_str("ExclusiveStartStreamName")? {
        c.stream_name("ExclusiveStartStreamName", start);
    }
    c.finish()?;
    let limit = limit.unwrap_or(100) as usize;
    let start = match req.opt_str("NextToken")? {
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidArgument,
                        format!("Invalid NextToken: {token}"),
                    )
                })?,
        ),
        None => req.opt_str("ExclusiveStartStreamName")?.map(str::to_owned),
    };
    let all = gw.store.list();
    let page: Vec<_> = all
        .iter()
        .filter(|s| start.as_deref().is_none_or(|st| s.name.as_str() > st))
        .collect();
    let has_more = page.len() > limit;
    let page = &page[..page.len().min(limit)];
    let next_token = match (has_more, page.last()) {
        (true, Some(last)) => Out::str(URL_SAFE_NO_PAD.encode(&last.name)),
        _ => Out::Null,
    };
    Ok(Out::map([
        (
            "StreamNames",
            Out::List(page.iter().map(|s| Out::str(&s.name)).collect()),
        ),
        ("HasMoreStreams", Out::Bool(has_more)),
        ("NextToken", next_token),
        (
            "StreamSummaries",
            Out::List(
                page.iter()
                    .map(|s| {
                        Out::map([
                            ("StreamName", Out::str(&s.name)),
                            ("StreamARN", Out::str(gw.arn(&s.name))),
                            ("StreamStatus", Out::str("ACTIVE")),
                            (
                                "StreamModeDetails",
                                Out::map([("StreamMode", Out::str(s.mode.as_str()))]),
                            ),
                            ("StreamCreationTimestamp", Out::Time(s.created_ms)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ]))
}
