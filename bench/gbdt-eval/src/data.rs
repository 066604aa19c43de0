//! Telco churn loader. customerID dropped; numeric columns as f64 (TotalCharges " " -> NaN);
//! categorical columns as ordinal codes 0..k-1 in alphabetical order of the level strings.

pub struct Dataset {
    pub n: usize,
    pub p: usize,
    /// row-major n x p
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub names: Vec<String>,
    pub categorical: Vec<usize>,
}

impl Dataset {
    pub fn rows(&self, idx: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let mut x = Vec::with_capacity(idx.len() * self.p);
        let mut y = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(&self.x[i * self.p..(i + 1) * self.p]);
            y.push(self.y[i]);
        }
        (x, y)
    }
}

const NUMERIC: &[&str] = &["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"];

pub fn load(path: &str) -> Dataset {
    let text = std::fs::read_to_string(path).expect("read csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect::<Vec<_>>())
        .collect();
    for r in &rows {
        assert_eq!(r.len(), header.len(), "unexpected comma in a field");
    }
    let target = header.iter().position(|&h| h == "Churn").unwrap();
    let feat_cols: Vec<usize> = (0..header.len())
        .filter(|&j| header[j] != "customerID" && j != target)
        .collect();
    let n = rows.len();
    let p = feat_cols.len();
    let mut x = vec![0.0; n * p];
    let mut categorical = Vec::new();
    let mut names = Vec::new();
    for (fj, &j) in feat_cols.iter().enumerate() {
        names.push(header[j].to_string());
        if NUMERIC.contains(&header[j]) {
            for i in 0..n {
                let s = rows[i][j].trim();
                x[i * p + fj] = if s.is_empty() { f64::NAN } else { s.parse().unwrap() };
            }
        } else {
            categorical.push(fj);
            let mut levels: Vec<&str> = rows.iter().map(|r| r[j]).collect();
            levels.sort_unstable();
            levels.dedup();
            for i in 0..n {
                x[i * p + fj] = levels.binary_search(&rows[i][j]).unwrap() as f64;
            }
        }
    }
    let y = rows
        .iter()
        .map(|r| match r[target].trim() {
            "Yes" => 1.0,
            "No" => 0.0,
            o => panic!("bad label {o}"),
        })
        .collect();
    Dataset { n, p, x, y, names, categorical }
}
