//! `millrace predict`: score a file with a saved model.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use millrace_automl::Task;
use millrace_wrangle::Column;

use crate::cli::PredictArgs;
use crate::cmd::data_io;

pub async fn run(data_dir: &Path, args: PredictArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    // A bare NAME is the production version (the latest when none is promoted).
    let registry = millrace_serve::registry::Registry::new(data_dir);
    let (file, _, _) = registry.resolve(&args.model)?;
    let (model, _) = registry.load(&args.model)?;
    let s3 = millrace_lake::S3Options {
        endpoint_url: args.s3_endpoint_url.clone(),
        path_style: args.s3_endpoint_url.is_some(),
    };
    let frame = data_io::read_frame(data_dir, &args.input, &s3)
        .await
        .with_context(|| format!("--input {}", args.input))?;
    let output = args.output.clone();
    let (batch, rows) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(RecordBatch, usize)> {
            let p = model.predict(&frame)?;
            let mut fields = Vec::new();
            let mut arrays: Vec<ArrayRef> = Vec::new();
            for id in &model.id_columns {
                if let Some(col) = frame.column(id) {
                    let values: Vec<Option<String>> = match col {
                        Column::Str(v) => v.clone(),
                        Column::Num(v) => v
                            .iter()
                            .map(|x| millrace_wrangle::frame::format_num(*x))
                            .collect(),
                    };
                    fields.push(Field::new(id, DataType::Utf8, true));
                    arrays.push(Arc::new(StringArray::from(values)));
                }
            }
            match &model.task {
                Task::Regression => {
                    fields.push(Field::new("prediction", DataType::Float64, false));
                    arrays.push(Arc::new(Float64Array::from(p.values.clone())));
                }
                Task::Binary { .. } => {
                    fields.push(Field::new("predicted_label", DataType::Utf8, false));
                    arrays.push(Arc::new(StringArray::from(p.labels(&model))));
                    fields.push(Field::new("probability", DataType::Float64, false));
                    arrays.push(Arc::new(Float64Array::from(p.values.clone())));
                }
                Task::Multiclass { classes } => {
                    fields.push(Field::new("predicted_label", DataType::Utf8, false));
                    arrays.push(Arc::new(StringArray::from(p.labels(&model))));
                    for (j, c) in classes.iter().enumerate() {
                        fields.push(Field::new(
                            format!("probability_{c}"),
                            DataType::Float64,
                            false,
                        ));
                        let v: Vec<f64> = (0..p.rows).map(|i| p.values[i * p.width + j]).collect();
                        arrays.push(Arc::new(Float64Array::from(v)));
                    }
                }
            }
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
            Ok((batch, p.rows))
        })
        .await??;
    let bytes = tokio::task::spawn_blocking(move || data_io::encode(&output, &batch)).await??;
    data_io::write_bytes(&args.output, bytes, &s3).await?;
    eprintln!(
        "scored {rows} rows with {} in {:.2} s → {}",
        file.display(),
        started.elapsed().as_secs_f64(),
        args.output
    );
    Ok(())
}
