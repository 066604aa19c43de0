//! Dynamic partitioning by a jq expression: Firehose's `MetadataExtraction` processor
//! (`MetadataExtractionQuery` with `JsonParsingEngine` `JQ-1.6`), evaluated by jaq
//! (`jaq-core`, `jaq-std`, `jaq-json`), a jq interpreter, not a subset of our own.
//!
//! The query runs once per record and must produce exactly one output, a JSON object; its
//! values become the `!{partitionKeyFromQuery:NAME}` values of the prefix:
//!
//! ```text
//! {customer_id: .customer.id, year: .ts | strftime("%Y"), device: .type.device | ascii_downcase}
//! ```
//!
//! Strings are used as they are, numbers and booleans as jq prints them (`3`, `1.5`, `true`);
//! `null`, arrays and objects, an output that is not an object, no output or more than one,
//! and jq errors make the record a partitioning failure (Firehose's
//! `DynamicPartitioning.MetadataExtractionFailed`, written under `partitioning-failed`).
//!
//! **Bounds.** A query is configuration, but it runs on data, so one record must not be able
//! to stall a delivery or crash the process:
//! - at most two outputs are taken (the second one only to say "more than one");
//! - every evaluation step (jaq reads its lookup table once per term it evaluates, and that
//!   read is where the count is kept) counts against [`MAX_STEPS`]; `range/3`, jaq's one
//!   native generator, is replaced by one that counts each value it yields, so
//!   `[range(1e9)]`, `until(false; .)`, `last(repeat(.))` and `def f: f; f` all stop;
//! - recursion is bounded by stack use: evaluation runs on a thread with an
//!   [`EVAL_STACK_BYTES`] stack and stops once it is [`MAX_STACK_DEPTH_BYTES`] deep
//!   (`def f: 1 + f; f`), long before the stack overflows (which would abort the process).
//!
//! A query past a bound is unwound (`resume_unwind`, so no panic message is printed) and the
//! record fails with the reason. The bounds count steps and bytes, not time, so a replay of
//! the same records fails or succeeds exactly as before: encoding stays deterministic. Memory
//! is not bounded: a query that builds a huge value in a few steps (`"x" * 1e10`) can still
//! exhaust it, as it would in jq.
//!
//! Filters whose output would not be a function of the record are left out: `now` and `env`
//! fail (a replay must put a record in the same prefix, and the server's environment is not
//! the query's business), `debug` and `stderr` print nothing, `input`/`inputs`, `$ENV` and
//! modules (`import`, `include`) do not exist.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

use jaq_core::data::HasLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::native::{Fun, bome, v};
use jaq_core::{Ctx, Cv, DataT, Exn, ValXs, Vars};
use jaq_json::{Num, Val};

/// Evaluation steps one record's query may take (a typical key extraction takes 10 to 500).
pub const MAX_STEPS: u64 = 100_000;
/// How deep the evaluation may use the stack before it is stopped.
pub const MAX_STACK_DEPTH_BYTES: usize = 8 << 20;
/// The stack of the thread that evaluates queries (reserved, used only as deep as needed).
pub const EVAL_STACK_BYTES: usize = 32 << 20;
/// Longest error message kept (jq errors may quote whole values).
const MAX_MESSAGE_CHARS: usize = 400;

/// A compiled jq query; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct PartitionQuery {
    text: Arc<str>,
    filter: Arc<jaq_core::Filter<Q>>,
}

impl fmt::Debug for PartitionQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PartitionQuery").field(&self.text).finish()
    }
}

/// Why an evaluation was stopped (the unwind payload).
enum Runaway {
    Steps,
    Depth,
}

/// The data kind of our filters: jaq-json values, with an evaluation budget as global data.
struct Q;

impl DataT for Q {
    type V<'a> = Val;
    type Data<'a> = Env<'a>;
}

#[derive(Clone)]
struct Env<'a> {
    lut: &'a jaq_core::Lut<Q>,
    budget: &'a Budget,
}

struct Budget {
    steps: Cell<u64>,
    /// Address of a local of the frame that started the evaluation.
    stack_base: usize,
}

impl Env<'_> {
    /// Counts one step and measures the stack; unwinds when past a bound.
    fn tick(&self) {
        let steps = self.budget.steps.get() + 1;
        self.budget.steps.set(steps);
        if steps > MAX_STEPS {
            resume_unwind(Box::new(Runaway::Steps));
        }
        let marker = 0u8;
        let here = std::ptr::addr_of!(marker).addr();
        if here.abs_diff(self.budget.stack_base) > MAX_STACK_DEPTH_BYTES {
            resume_unwind(Box::new(Runaway::Depth));
        }
    }
}

impl<'a> HasLut<'a, Q> for Env<'a> {
    /// jaq reads the lookup table once for every term it evaluates: the step counter.
    fn lut(&self) -> &'a jaq_core::Lut<Q> {
        self.tick();
        self.lut
    }
}

impl PartitionQuery {
    /// Parses and compiles `text`; the error says where and what jaq expected.
    pub fn compile(text: &str) -> Result<Self, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: text,
                    path: (),
                },
            )
            .map_err(|errs| {
                let first = errs.into_iter().next().map(|(_, e)| e);
                first.map_or_else(|| "jq parse error".to_owned(), |e| load_error(text, e))
            })?;
        let filter = jaq_core::Compiler::default()
            .with_funs(funs())
            .compile(modules)
            .map_err(|errs| {
                let undefined: Vec<String> = errs
                    .into_iter()
                    .flat_map(|(_, list)| list)
                    .map(|(name, what)| match what {
                        jaq_core::compile::Undefined::Filter(arity) => {
                            format!("filter {name}/{arity}")
                        }
                        other => format!("{} {name}", other.as_str()),
                    })
                    .collect();
                format!("jq compile error: undefined {}", undefined.join(", "))
            })?;
        Ok(Self {
            text: text.into(),
            filter: Arc::new(filter),
        })
    }

    /// The query as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The partition keys of one record: the query's one output, an object, with each value
    /// as prefix text. Runs on an evaluation thread (see [`on_eval_stack`]); a batch should
    /// call this from inside one `on_eval_stack` so the thread is started once.
    pub fn eval(&self, record: &serde_json::Value) -> Result<BTreeMap<String, String>, String> {
        if ON_EVAL_STACK.get() {
            return self.eval_here(record);
        }
        on_eval_stack(|| self.eval_here(record))
            .map_err(|e| format!("starting the query thread: {e}"))?
    }

    fn eval_here(&self, record: &serde_json::Value) -> Result<BTreeMap<String, String>, String> {
        let input: Val = serde::Deserialize::deserialize(record)
            .map_err(|e| format!("record as a jq value: {e}"))?;
        let marker = 0u8;
        let budget = Budget {
            steps: Cell::new(0),
            stack_base: std::ptr::addr_of!(marker).addr(),
        };
        let env = Env {
            lut: &self.filter.lut,
            budget: &budget,
        };
        let run = catch_unwind(AssertUnwindSafe(|| {
            let ctx = Ctx::<Q>::new(env, Vars::new([]));
            let outputs: Vec<Result<Val, String>> = self
                .filter
                .id
                .run((ctx, input))
                .take(2)
                .map(|r| r.map_err(exception))
                .collect();
            match <[_; 2]>::try_from(outputs) {
                Ok([first, second]) => {
                    first?;
                    second?;
                    Err(
                        "the query produced more than one output; it must produce one object"
                            .to_owned(),
                    )
                }
                Err(mut outputs) => match outputs.pop() {
                    Some(out) => keys(out?),
                    None => Err("the query produced no output; it must produce one object".into()),
                },
            }
        }));
        match run {
            Ok(result) => result.map_err(|e| truncate(&e)),
            Err(payload) => Err(match payload.downcast_ref::<Runaway>() {
                Some(Runaway::Steps) => format!(
                    "the query was stopped after {MAX_STEPS} evaluation steps (a runaway query?)"
                ),
                Some(Runaway::Depth) => format!(
                    "the query was stopped at {} MiB of stack (recursion too deep)",
                    MAX_STACK_DEPTH_BYTES >> 20
                ),
                None => {
                    let why = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    truncate(&format!("the jq interpreter failed: {why}"))
                }
            }),
        }
    }
}

thread_local! {
    static ON_EVAL_STACK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on a thread with an [`EVAL_STACK_BYTES`] stack, where [`PartitionQuery::eval`]
/// evaluates in place (or directly, if this already is such a thread). A panic in `f` is
/// resumed in the caller.
pub fn on_eval_stack<R: Send>(f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    if ON_EVAL_STACK.get() {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("partition-query".into())
            .stack_size(EVAL_STACK_BYTES)
            .spawn_scoped(scope, || {
                ON_EVAL_STACK.set(true);
                f()
            })?;
        match handle.join() {
            Ok(r) => Ok(r),
            Err(payload) => resume_unwind(payload),
        }
    })
}

/// jaq's filters, less those whose output is not a function of the record, and with a
/// `range/3` that counts its values against the budget.
fn funs() -> impl Iterator<Item = Fun<Q>> {
    const REPLACED: [(&str, usize); 5] = [
        ("range", 3),
        ("now", 0),
        ("env", 0),
        ("debug_empty", 0),
        ("stderr_empty", 0),
    ];
    use jaq_core::native::run;
    let ours: [Fun<Q>; 5] = [
        run::<Q>(("range", v(3), range)),
        run::<Q>(("now", v(0), |_| {
            bome(Err(jaq_core::Error::str(
                "now is not available to partition_query: a record's prefix must not depend \
                 on when it is delivered",
            )))
        })),
        run::<Q>(("env", v(0), |_| {
            bome(Err(jaq_core::Error::str(
                "env is not available to partition_query",
            )))
        })),
        run::<Q>(("debug_empty", v(0), |_| Box::new(std::iter::empty()))),
        run::<Q>(("stderr_empty", v(0), |_| Box::new(std::iter::empty()))),
    ];
    jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .filter(|(name, args, _)| !REPLACED.contains(&(*name, args.len())))
        .chain(ours)
}

/// `range($from; $upto; $by)` as jq 1.6 defines it (`$by` of 0 gives nothing), one step per
/// value.
fn range<'a>(mut cv: Cv<'a, Q>) -> ValXs<'a, <Q as DataT>::V<'a>> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let by = cv.0.pop_var();
    let upto = cv.0.pop_var();
    let from = cv.0.pop_var();
    let env = cv.0.data().clone();
    let dir = by.partial_cmp(&Val::from(0usize)).unwrap_or(Equal);
    let mut next = Some(from);
    Box::new(std::iter::from_fn(move || {
        let x = next.take()?;
        let go = match dir {
            Greater => x < upto,
            Less => x > upto,
            Equal => false,
        };
        if !go {
            return None;
        }
        env.tick();
        match x.clone() + by.clone() {
            Ok(n) => {
                next = Some(n);
                Some(Ok(x))
            }
            Err(e) => Some(Err(Exn::from(e))),
        }
    }))
}

/// The message of a lex, parse or module error, with the character it was found at.
fn load_error(code: &str, e: load::Error<&str>) -> String {
    let at = |found: &str| {
        let offset = found
            .as_ptr()
            .addr()
            .checked_sub(code.as_ptr().addr())
            .filter(|o| *o <= code.len() && code.is_char_boundary(*o));
        let position = offset.map_or(String::new(), |o| {
            format!(" at character {}", code[..o].chars().count() + 1)
        });
        let token: String = found.chars().take(20).collect();
        let found = if token.is_empty() {
            "the end of the query".to_owned()
        } else {
            format!("{token:?}")
        };
        (position, found)
    };
    match e {
        load::Error::Io(list) => {
            let names: Vec<String> = list.iter().map(|(path, _)| format!("{path:?}")).collect();
            format!(
                "jq modules cannot be loaded in partition_query (import/include of {})",
                names.join(", ")
            )
        }
        load::Error::Lex(list) => match list.into_iter().next() {
            Some((expected, found)) => {
                let (position, found) = at(found);
                format!(
                    "jq parse error{position}: expected {}, found {found}",
                    expected.as_str()
                )
            }
            None => "jq parse error".into(),
        },
        load::Error::Parse(list) => match list.into_iter().next() {
            Some((expected, found)) => {
                let (position, found) = at(found);
                format!(
                    "jq parse error{position}: expected {}, found {found}",
                    expected.as_str()
                )
            }
            None => "jq parse error".into(),
        },
    }
}

/// A jq error or `halt` as a message.
fn exception(e: Exn<'_, Val>) -> String {
    match e.get_err() {
        Ok(err) => format!("jq error: {err}"),
        Err(e) => match e.get_halt() {
            Ok(code) => format!("the query halted (exit code {code})"),
            Err(other) => format!("jq error: {other:?}"),
        },
    }
}

/// The partition keys of the query's output, which must be an object of scalars.
fn keys(out: Val) -> Result<BTreeMap<String, String>, String> {
    let Val::Obj(map) = out else {
        return Err(format!(
            "the query's output is {} ({}), not an object",
            type_name(&out),
            out
        ));
    };
    let mut keys = BTreeMap::new();
    for (k, v) in map.iter() {
        let key = match k {
            Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
            other => return Err(format!("the output's key {other} is not a string")),
        };
        let text = match v {
            Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => number_text(n)
                .ok_or_else(|| format!("the value of key {key:?} is {n}, not a finite number"))?,
            Val::Null => return Err(format!("the value of key {key:?} is null")),
            other => {
                return Err(format!(
                    "the value of key {key:?} is {}, not a string, number or boolean",
                    type_name(other)
                ));
            }
        };
        keys.insert(key, text);
    }
    Ok(keys)
}

/// A number as jq prints it: integral values without a fraction (`3`, not `3.0`).
fn number_text(n: &Num) -> Option<String> {
    match n {
        Num::Float(x) if !x.is_finite() => None,
        Num::Float(x) if x.fract() == 0.0 && x.abs() < 1e17 => Some(format!("{}", *x as i64)),
        n => Some(n.to_string()),
    }
}

fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "a boolean",
        Val::Num(_) => "a number",
        Val::TStr(_) | Val::BStr(_) => "a string",
        Val::Arr(_) => "an array",
        Val::Obj(_) => "an object",
    }
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(q: &str, record: serde_json::Value) -> Result<BTreeMap<String, String>, String> {
        PartitionQuery::compile(q).unwrap().eval(&record)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn builds_keys_from_an_object_with_nested_paths() {
        let record = json!({
            "customer": {"id": "C-17", "address": {"country": "PT"}},
            "Contract": "Month-to-month",
            "type": {"device": "mobile"}
        });
        assert_eq!(
            eval(
                "{customer_id: .customer.id, country: .customer.address.country, \
                 contract: .Contract, device: .type.device}",
                record
            )
            .unwrap(),
            map(&[
                ("contract", "Month-to-month"),
                ("country", "PT"),
                ("customer_id", "C-17"),
                ("device", "mobile"),
            ])
        );
        // The shape the AWS CDK's MetadataExtractionProcessor.jq16 writes: quoted keys.
        assert_eq!(
            eval(
                r#"{"key1":.foo,"key2":.bar.baz|ascii_upcase}"#,
                json!({"foo": "recordA", "bar": {"baz": "Partition1"}})
            )
            .unwrap(),
            map(&[("key1", "recordA"), ("key2", "PARTITION1")])
        );
    }

    #[test]
    fn pipes_builtins_and_interpolation() {
        let record = json!({"name": "ACME Corp", "n": 3, "ts": 1565382027, "ok": true});
        assert_eq!(
            eval(
                r#"{
                    lower: .name | ascii_downcase,
                    slug: .name | gsub(" "; "-") | ascii_downcase,
                    n: (.n | tostring),
                    label: "n\(.n)-\(.name | split(" ") | .[0])",
                    year: .ts | strftime("%Y"),
                    hour: .ts | strftime("%H"),
                    big: (if .n > 2 then "yes" else "no" end),
                    ok: .ok
                }"#,
                record
            )
            .unwrap(),
            map(&[
                ("big", "yes"),
                ("hour", "20"),
                ("label", "n3-ACME"),
                ("lower", "acme corp"),
                ("n", "3"),
                ("ok", "true"),
                ("slug", "acme-corp"),
                ("year", "2019"),
            ])
        );
    }

    #[test]
    fn numbers_and_booleans_are_printed_as_jq_prints_them() {
        let record = json!({"i": 42, "f": 1.5, "whole": 3.0, "neg": -7, "b": false});
        assert_eq!(
            eval(
                "{i: .i, f: .f, whole: .whole, half: (.i / 2), neg: .neg, b: .b}",
                record
            )
            .unwrap(),
            map(&[
                ("b", "false"),
                ("f", "1.5"),
                ("half", "21"),
                ("i", "42"),
                ("neg", "-7"),
                ("whole", "3"),
            ])
        );
    }

    #[test]
    fn an_output_that_is_not_an_object_of_scalars_fails() {
        let record = json!({"a": "x", "arr": [1], "obj": {"k": 1}});
        let e = eval(".a", record.clone()).unwrap_err();
        assert!(e.contains("a string") && e.contains("not an object"), "{e}");
        let e = eval("{a: .missing}", record.clone()).unwrap_err();
        assert!(e.contains("\"a\" is null"), "{e}");
        let e = eval("{a: .arr}", record.clone()).unwrap_err();
        assert!(e.contains("an array"), "{e}");
        let e = eval("{a: .obj}", record.clone()).unwrap_err();
        assert!(e.contains("an object"), "{e}");
        let e = eval("{(1): .a}", record.clone()).unwrap_err();
        assert!(e.contains("key 1 is not a string"), "{e}");
        let e = eval("empty", record.clone()).unwrap_err();
        assert!(e.contains("no output"), "{e}");
        let e = eval(r#"{a: .a | error("bad \(.)")}"#, record.clone()).unwrap_err();
        assert!(e.starts_with("jq error:") && e.contains("bad x"), "{e}");
        let e = eval("{a: (.a | tonumber)}", record).unwrap_err();
        assert!(e.starts_with("jq error:"), "{e}");
    }

    #[test]
    fn two_outputs_fail() {
        let e = eval("{a: .x}, {a: .y}", json!({"x": "1", "y": "2"})).unwrap_err();
        assert!(e.contains("more than one output"), "{e}");
        let e = eval("{a: (.x, .y)}", json!({"x": "1", "y": "2"})).unwrap_err();
        assert!(e.contains("more than one output"), "{e}");
        // Only two are taken: an endless generator is no runaway here.
        let e = eval("repeat({a: \"x\"})", json!({})).unwrap_err();
        assert!(e.contains("more than one output"), "{e}");
    }

    #[test]
    fn invalid_queries_are_refused_with_jaqs_reason() {
        let e = PartitionQuery::compile("{a: .b").unwrap_err();
        assert!(e.starts_with("jq parse error"), "{e}");
        assert!(e.contains("closing brace"), "{e}");
        let e = PartitionQuery::compile("{a: .b | }").unwrap_err();
        assert_eq!(
            e, "jq parse error at character 10: expected term, found \"}\"",
            "{e}"
        );
        let e = PartitionQuery::compile(".a |").unwrap_err();
        assert!(e.contains("the end of the query"), "{e}");
        let e = PartitionQuery::compile("").unwrap_err();
        assert!(e.starts_with("jq parse error"), "{e}");
        let e = PartitionQuery::compile("{a: .b | no_such_filter}").unwrap_err();
        assert_eq!(e, "jq compile error: undefined filter no_such_filter/0");
        let e = PartitionQuery::compile("{a: $nope}").unwrap_err();
        assert_eq!(e, "jq compile error: undefined variable $nope");
        let e = PartitionQuery::compile("{a: $ENV.HOME}").unwrap_err();
        assert!(e.contains("$ENV"), "{e}");
        let e = PartitionQuery::compile("{a: input}").unwrap_err();
        assert!(e.contains("input/0"), "{e}");
        let e = PartitionQuery::compile(r#"import "m" as m; {a: .b}"#).unwrap_err();
        assert!(e.contains("modules cannot be loaded"), "{e}");
    }

    #[test]
    fn filters_that_do_not_depend_on_the_record_are_unavailable() {
        let e = eval("{t: now | tostring}", json!({})).unwrap_err();
        assert!(e.contains("now is not available"), "{e}");
        let e = eval("{h: env.HOME}", json!({})).unwrap_err();
        assert!(e.contains("env is not available"), "{e}");
        // debug and stderr pass their input through and print nothing.
        assert_eq!(
            eval("{a: .a | debug | stderr}", json!({"a": "x"})).unwrap(),
            map(&[("a", "x")])
        );
        let e = eval("{a: .a} | halt", json!({"a": "x"})).unwrap_err();
        assert!(e.contains("halted"), "{e}");
    }

    #[test]
    fn runaway_queries_are_stopped() {
        for q in [
            "[range(1e9)] | {n: length}",
            "{n: last(range(1e9))}",
            "until(false; .)",
            "def f: f; f",
            "[limit(1e9; repeat(1))] | {n: length}",
            "reduce range(1e9) as $i (0; . + $i) | {n: .}",
            "{n: ([.[]?] | until(length > 1e9; . + [1]) | length)}",
        ] {
            let e = eval(q, json!({"a": 1})).unwrap_err();
            assert!(e.contains("evaluation steps"), "{q}: {e}");
        }
        for q in ["def f: 1 + f; {n: f}", "def f: [f]; f"] {
            let e = eval(q, json!({})).unwrap_err();
            assert!(e.contains("recursion too deep"), "{q}: {e}");
        }
        // range still works within the budget, jq 1.6's way.
        assert_eq!(
            eval(
                "{a: [range(3)] | map(tostring) | join(\"\"), b: [range(0; 10; 0)] | length, \
                 c: [range(5; 0; -2)] | map(tostring) | join(\",\")}",
                json!({})
            )
            .unwrap(),
            map(&[("a", "012"), ("b", "0"), ("c", "5,3,1")])
        );
    }

    #[test]
    fn one_query_is_shared_across_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        let q = PartitionQuery::compile("{k: .k}").unwrap();
        send_sync(&q);
        let results: Vec<_> = std::thread::scope(|s| {
            (0..4)
                .map(|i| {
                    let q = q.clone();
                    s.spawn(move || q.eval(&json!({"k": i})).unwrap()["k"].clone())
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(results, ["0", "1", "2", "3"]);
        // Many records on one evaluation thread.
        let keys = on_eval_stack(|| {
            (0..100)
                .map(|i| q.eval(&json!({"k": format!("v{i}")})).unwrap()["k"].clone())
                .collect::<Vec<_>>()
        })
        .unwrap();
        assert_eq!(keys[99], "v99");
    }
}
