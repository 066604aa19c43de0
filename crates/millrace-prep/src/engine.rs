//! The DataFusion session prep runs in: a bounded memory pool that spills to disk, identifiers
//! kept as written (lake columns are `customerID`, not `customerid`), and SQL text run
//! statement by statement so an error can say which statement failed.

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;

use crate::error::{PrepError, Result};

/// Default memory pool: half the machine's memory, between 1 and 16 GiB. Beyond it sorts,
/// aggregations and joins spill to disk (DataFusion's accounting is conservative, so a pool much
/// smaller than the data spills early).
pub fn default_memory_limit_mib() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(4 << 20);
    (total_kib / 1024 / 2).clamp(1024, 16 * 1024)
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub memory_limit_mib: u64,
    /// Parallel partitions; defaults to the number of cores.
    pub target_partitions: Option<usize>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            memory_limit_mib: default_memory_limit_mib(),
            target_partitions: None,
        }
    }
}

pub fn context(opts: &EngineOptions) -> Result<SessionContext> {
    let pool_bytes = (opts.memory_limit_mib as usize).saturating_mul(1 << 20);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(pool_bytes)))
        .build_arc()
        .map_err(PrepError::df("cannot start the query engine"))?;
    let config = configure(SessionConfig::new(), opts);
    let ctx = SessionContext::new_with_state(session_state(config, runtime));
    Ok(ctx)
}

/// Prep's settings on top of `config`: information schema, batch size, identifiers kept as
/// written, and the sort's spill reservation sized to the pool. A Ballista client starts from
/// Ballista's config and adds the same.
pub fn configure(config: SessionConfig, opts: &EngineOptions) -> SessionConfig {
    let pool_bytes = (opts.memory_limit_mib as usize).saturating_mul(1 << 20);
    let mut config = config.with_information_schema(true).with_batch_size(8192);
    if let Some(n) = opts.target_partitions {
        config = config.with_target_partitions(n.max(1));
    }
    let opts_mut = config.options_mut();
    opts_mut.sql_parser.enable_ident_normalization = false;
    // A sort keeps this much back for merging its spill files; DataFusion's 10 MB default
    // would not fit a small pool at all.
    opts_mut.execution.sort_spill_reservation_bytes = opts_mut
        .execution
        .sort_spill_reservation_bytes
        .min(pool_bytes / 8);
    config
}

/// DataFusion's physical optimizer rules as prep runs them: wherever a plan is made (here, or
/// on a Ballista scheduler) the same rules apply.
pub fn physical_optimizer_rules()
-> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    // DataFusion 55's physical filter pushdown matches columns by name: a filter above an outer
    // join that compares two same-named columns (`t._seq = newest._seq`) was pushed below the
    // join onto one side, as `_seq = _seq`, and rows that should have gone were kept. The
    // upstream change that maps pushed columns by position (apache/datafusion#25259) looks
    // like the fix; until a release has it the rule stays off. Lake scans take no pushed
    // filters, so it bought prep nothing (the churn job's time is unchanged).
    datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new()
        .rules
        .into_iter()
        .filter(|r| !r.name().starts_with("FilterPushdown"))
        .collect()
}

/// The session prep plans and runs in: DataFusion's defaults, [`physical_optimizer_rules`],
/// and the copy-sparing `TRIM`.
pub fn session_state(
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> datafusion::execution::SessionState {
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(physical_optimizer_rules())
        .build();
    register_functions(&mut state);
    state
}

/// Prep's own functions, over DataFusion's of the same name.
pub fn register_functions(registry: &mut dyn datafusion::execution::FunctionRegistry) {
    let _ = registry.register_udf(Arc::new(crate::trim::spare_btrim()));
}

/// Runs every statement of `sql` in order and returns the result of the last one (DDL such as
/// `CREATE VIEW` takes effect at once). `origin` names where the text came from; statements
/// are numbered from `first_number` in errors.
pub async fn run_statements(
    ctx: &SessionContext,
    sql: &str,
    origin: &str,
    first_number: usize,
) -> Result<(Option<DataFrame>, usize)> {
    let statements = DFParser::parse_sql(sql).map_err(|e| PrepError::DataFusion {
        context: format!("{origin}, statement {first_number}"),
        error: e,
    })?;
    let mut last = None;
    let mut n = first_number;
    for stmt in statements {
        let context = format!("{origin}, statement {n}");
        let plan = ctx
            .state()
            .statement_to_plan(stmt)
            .await
            .map_err(PrepError::df(context.clone()))?;
        last = Some(
            ctx.execute_logical_plan(plan)
                .await
                .map_err(PrepError::df(context))?,
        );
        n += 1;
    }
    Ok((last, n - first_number))
}

/// Plans one statement that only reads: a query (`SELECT`, `WITH`, `VALUES`, `EXPLAIN`).
/// DDL (`CREATE`, `DROP`), DML (`INSERT`, `COPY … TO`) and `SET` are refused before anything
/// runs, so a caller that is not trusted with the machine (the console's SQL box) can read the
/// tables it was given and nothing else.
pub async fn read_only(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let mut statements = DFParser::parse_sql(sql).map_err(PrepError::df("the query"))?;
    if statements.len() != 1 {
        return Err(PrepError::Input {
            table: "the query".into(),
            message: format!("expected one statement, found {}", statements.len()),
        });
    }
    let stmt = statements.pop_front().expect("one statement");
    let plan = ctx
        .state()
        .statement_to_plan(stmt)
        .await
        .map_err(PrepError::df("the query"))?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(PrepError::df("the query may only read"))?;
    ctx.execute_logical_plan(plan)
        .await
        .map_err(PrepError::df("the query"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::FunctionRegistry;

    /// A read-only query runs; anything that would create, write, copy out or change a
    /// setting is refused with the engine's reason, and nothing is left behind.
    #[tokio::test]
    async fn read_only_refuses_every_kind_of_change() {
        let ctx = context(&EngineOptions::default()).unwrap();
        let df = read_only(&ctx, "SELECT 1 AS one").await.unwrap();
        assert_eq!(df.collect().await.unwrap()[0].num_rows(), 1);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.csv");
        let refused = [
            "CREATE TABLE t AS SELECT 1".to_owned(),
            "CREATE VIEW v AS SELECT 1".to_owned(),
            format!(
                "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '{}'",
                dir.path().display()
            ),
            format!("COPY (SELECT 1) TO '{}'", out.display()),
            "SET datafusion.execution.batch_size = 1".to_owned(),
            "SELECT 1; SELECT 2".to_owned(),
        ];
        for sql in &refused {
            let e = read_only(&ctx, sql)
                .await
                .err()
                .unwrap_or_else(|| panic!("{sql} ran"));
            assert!(!e.to_string().is_empty(), "{sql}");
        }
        assert!(!out.exists());
        assert!(!ctx.table_exist("t").unwrap() && !ctx.table_exist("v").unwrap());
    }

    /// `TRIM(x)` and `btrim(x)` in SQL reach prep's copy-sparing trim, and still trim.
    #[tokio::test]
    async fn sql_trim_is_the_copy_sparing_one() {
        let ctx = context(&EngineOptions::default()).unwrap();
        for name in ["btrim", "trim"] {
            assert!(crate::trim::is_spare(&ctx.udf(name).unwrap()), "{name}");
        }
        let sql = "SELECT TRIM(s) AS t FROM (VALUES ('a'), (' b '), ('c')) v(s) ORDER BY t";
        let (df, _) = run_statements(&ctx, sql, "test", 1).await.unwrap();
        let text =
            arrow::util::pretty::pretty_format_batches(&df.unwrap().collect().await.unwrap())
                .unwrap()
                .to_string();
        assert!(text.contains("| a |") && text.contains("| b |"), "{text}");
    }

    /// The latest row per key, written as an outer join with a filter over same-named columns:
    /// DataFusion 55's physical filter pushdown moved the filter onto one side of the join
    /// and returned every row.
    #[tokio::test]
    async fn a_filter_over_same_named_columns_stays_above_an_outer_join() {
        let ctx = context(&EngineOptions::default()).unwrap();
        let sql = "WITH t AS (SELECT TRIM(k) AS k, s FROM (VALUES ('a', 1), ('a', 2), ('b', 3)) \
                   v(k, s) WHERE k IS NOT NULL AND TRIM(k) <> '') \
                   SELECT t.k, t.s FROM (SELECT k, max(s) AS s FROM t GROUP BY k \
                   HAVING count(*) > 1) n RIGHT JOIN t ON t.k = n.k \
                   WHERE n.s IS NULL OR t.s = n.s ORDER BY t.k";
        let (df, _) = run_statements(&ctx, sql, "test", 1).await.unwrap();
        let batches = df.unwrap().collect().await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 2, "{text}");
        assert!(
            text.contains("| a | 2 |") && text.contains("| b | 3 |"),
            "{text}"
        );
    }
}
