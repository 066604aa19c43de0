//! Synthetic Telco-style customer-churn rows.
//!
//! Produces rows with the same 21 columns, header, category spellings and
//! number formats as the public "Telco Customer Churn" CSV, so anything that
//! ingests the real file also ingests these rows. Output is deterministic
//! for a given seed (and a given `rand` version: `StdRng`'s algorithm may
//! change between `rand` releases).
//!
//! # Generative model
//!
//! Each customer is drawn top-down; later draws depend on earlier ones, which
//! gives the data the same kind of correlations the real file has:
//!
//! 1. Demographics: gender 50/50, senior citizen 16%, partner 48%; dependents
//!    are far likelier with a partner and rare for seniors.
//! 2. Contract: weighted by household (partners and dependents sign longer
//!    contracts, seniors prefer month-to-month); ~55% / 21% / 24%.
//! 3. Tenure (months, 0..=72) follows the contract: month-to-month is
//!    1 + exponential (mean ~18, many one-month customers), one-year and two-year
//!    are clamped normals around 42 and 58. A few brand-new one/two-year
//!    customers get tenure 0.
//! 4. Internet (DSL / fiber / none) depends on contract and seniority (fiber is
//!    month-to-month heavy and popular with seniors). Everyone without phone
//!    service is a DSL customer, as in the real data.
//! 5. Add-ons (security, backup, protection, tech support, TV, movies) are
//!    logistic draws per internet type, shifted up by longer contracts and by a
//!    per-customer "engagement" latent so add-ons cluster. Without internet they
//!    are all "No internet service"; without phone, lines are "No phone service".
//! 6. Paperless billing and payment method depend on internet and contract
//!    (electronic check is a fiber / month-to-month habit, mailed check a
//!    no-internet one).
//! 7. MonthlyCharges is a price list plus noise: phone $20, extra lines $5,
//!    DSL $25 / fiber $50 on top of the phone (so ~$45 / ~$70 all in),
//!    security/backup/protection/support $5 each, TV/movies $10 each,
//!    plus N(0, 1) noise; rounded to 5 cents.
//! 8. TotalCharges ≈ tenure × MonthlyCharges plus noise with sd
//!    (4.5 + 0.1·MonthlyCharges)·√(tenure−1) (past prices drifted; the first
//!    month is exact), kept within 0.6..1.6 × the product. It is the
//!    single-space string `" "` when tenure is 0, exactly like the real file.
//! 9. Churn ~ Bernoulli(sigmoid(logit)), logit built from contract
//!    (month-to-month up, two-year down), −0.75·ln(1+tenure), fiber and
//!    charges (up), no internet (down), electronic check, paperless billing
//!    and seniority (up), online security and tech support (down). The
//!    intercept is tuned for a ~26.5% churn rate. Tenure-0 customers never
//!    churn (they have not been billed yet). The noise in this draw keeps the
//!    data learnable but not separable: a one-hot logistic regression reaches
//!    an AUC close to the one it gets on the real file (~0.84).
//!
//! customerID is `NNNN-XXXXX`, a seed-keyed bijection of the row index, so ids
//! look random but never repeat (up to 10^4·26^5 rows).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Header of the real file, in file order.
pub const COLUMNS: [&str; 21] = [
    "customerID",
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
    "Churn",
];

/// Lazily generates `rows` customers; the same seed always yields the same
/// rows, and a shorter run is a prefix of a longer one.
pub fn generate(rows: usize, seed: u64) -> impl Iterator<Item = [String; 21]> {
    let mut rng = StdRng::seed_from_u64(seed);
    let id_key: u64 = rng.random();
    (0..rows as u64).map(move |i| Customer::draw(&mut rng).into_row(customer_id(i, id_key)))
}

/// Writes the header and `rows` generated rows as CSV (CRLF line ends, like
/// the real file). Returns the number of data rows written.
pub fn write_csv<W: std::io::Write>(out: W, rows: usize, seed: u64) -> std::io::Result<u64> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    w.write_record(COLUMNS)?;
    let mut written = 0u64;
    for row in generate(rows, seed) {
        w.write_record(&row)?;
        written += 1;
    }
    w.flush()?;
    Ok(written)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contract {
    MonthToMonth,
    OneYear,
    TwoYear,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Internet {
    Dsl,
    Fiber,
    Absent,
}

/// Payment methods; order matches the payment weight tables in `draw`.
const PAYMENTS: [&str; 4] = [
    "Bank transfer (automatic)",
    "Credit card (automatic)",
    "Electronic check",
    "Mailed check",
];
const ELECTRONIC_CHECK: usize = 2;

/// Add-on order in the output: OnlineSecurity, OnlineBackup, DeviceProtection,
/// TechSupport, StreamingTV, StreamingMovies.
const SECURITY: usize = 0;
const TECH_SUPPORT: usize = 3;
/// Monthly price of each add-on.
const ADDON_PRICE: [f64; 6] = [5.0, 5.0, 5.0, 5.0, 10.0, 10.0];
/// Base take-up logits per add-on for DSL and fiber customers (before the
/// contract shift); fiber users buy less security/support and more streaming.
const ADDON_LOGIT_DSL: [f64; 6] = [0.15, -0.05, -0.1, 0.15, -0.25, -0.2];
const ADDON_LOGIT_FIBER: [f64; 6] = [-0.65, 0.05, 0.05, -0.6, 0.55, 0.55];

struct Customer {
    male: bool,
    senior: bool,
    partner: bool,
    dependents: bool,
    tenure: u32,
    phone: bool,
    multiple_lines: bool,
    internet: Internet,
    addons: [bool; 6],
    contract: Contract,
    paperless: bool,
    payment: usize,
    monthly: f64,
    total: f64,
    churn: bool,
}

impl Customer {
    /// One customer, drawn step by step in a fixed order (the order of the random draws is
    /// what makes a seed reproduce the same data).
    fn draw(rng: &mut StdRng) -> Customer {
        let (male, senior, partner, dependents) = Self::demographics(rng);
        let contract = Self::contract(rng, senior, partner, dependents);
        let tenure = Self::tenure(rng, contract, partner);
        let t = f64::from(tenure);
        let (internet, phone, multiple_lines) = Self::lines(rng, contract, senior, t);
        let addons = Self::addons(rng, internet, contract);
        let (paperless, payment) = Self::billing(rng, internet, contract, senior);
        let (monthly, total) =
            Self::charges(rng, phone, multiple_lines, internet, &addons, tenure, t);
        let churn = tenure > 0 && {
            let logit = Self::churn_logit(
                contract, t, internet, monthly, payment, &addons, senior, paperless,
            );
            bernoulli_logit(rng, logit)
        };
        Customer {
            male,
            senior,
            partner,
            dependents,
            tenure,
            phone,
            multiple_lines,
            internet,
            addons,
            contract,
            paperless,
            payment,
            monthly,
            total,
            churn,
        }
    }

    /// Sex, senior citizen, partner, dependents.
    fn demographics(rng: &mut StdRng) -> (bool, bool, bool, bool) {
        // 1. Demographics.
        let male = rng.random_bool(0.505);
        let senior = rng.random_bool(0.162);
        let partner = rng.random_bool(if senior { 0.50 } else { 0.48 });
        let dependents = rng.random_bool(match (partner, senior) {
            (true, false) => 0.57,
            (true, true) => 0.15,
            (false, false) => 0.11,
            (false, true) => 0.03,
        });
        (male, senior, partner, dependents)
    }

    /// Settled households commit to longer terms.
    fn contract(rng: &mut StdRng, senior: bool, partner: bool, dependents: bool) -> Contract {
        // 2. Contract: settled households commit to longer terms.
        let household = f64::from(u8::from(partner)) + f64::from(u8::from(dependents));
        let m2m_weight = if senior { 1.3 } else { 0.85 };
        match pick(
            rng,
            &[m2m_weight, 0.29 + 0.09 * household, 0.25 + 0.17 * household],
        ) {
            0 => Contract::MonthToMonth,
            1 => Contract::OneYear,
            _ => Contract::TwoYear,
        }
    }

    /// Tenure follows the contract length.
    fn tenure(rng: &mut StdRng, contract: Contract, partner: bool) -> u32 {
        // 3. Tenure follows the contract length.
        match contract {
            Contract::MonthToMonth => {
                let mean = if partner { 20.0 } else { 15.5 };
                (1.0 + exponential(rng, mean)).floor().min(72.0) as u32
            }
            // Fixed-term sign-ups that have not been billed yet (~0.2% overall).
            _ if rng.random_bool(0.003) => 0,
            Contract::OneYear => (42.0 + 19.0 * normal(rng)).round().clamp(1.0, 72.0) as u32,
            Contract::TwoYear => (58.0 + 17.0 * normal(rng)).round().clamp(1.0, 72.0) as u32,
        }
    }

    /// Internet service, phone, multiple lines.
    fn lines(rng: &mut StdRng, contract: Contract, senior: bool, t: f64) -> (Internet, bool, bool) {
        // 4. Internet and phone. Fiber skews month-to-month and senior; seniors
        // almost always have internet.
        let mut internet_w = match contract {
            Contract::MonthToMonth => [0.34, 0.50, 0.16],
            Contract::OneYear => [0.40, 0.33, 0.27],
            Contract::TwoYear => [0.38, 0.22, 0.40],
        };
        if senior {
            internet_w[1] *= 2.2;
            internet_w[2] *= 0.2;
        }
        let internet = match pick(rng, &internet_w) {
            0 => Internet::Dsl,
            1 => Internet::Fiber,
            _ => Internet::Absent,
        };
        // Only DSL customers go without a phone line in the real data.
        let phone = internet != Internet::Dsl || rng.random_bool(0.72);
        let multiple_lines = phone && {
            let base = match internet {
                Internet::Dsl => -0.45,
                Internet::Fiber => 0.5,
                Internet::Absent => -1.3,
            };
            bernoulli_logit(rng, base + 0.03 * (t - 32.0))
        };
        (internet, phone, multiple_lines)
    }

    /// Add-ons: contract shift plus a shared engagement latent.
    fn addons(rng: &mut StdRng, internet: Internet, contract: Contract) -> [bool; 6] {
        // 5. Add-ons: contract shift plus a shared engagement latent.
        let mut addons = [false; 6];
        if internet != Internet::Absent {
            let base = if internet == Internet::Dsl {
                &ADDON_LOGIT_DSL
            } else {
                &ADDON_LOGIT_FIBER
            };
            let shift = match contract {
                Contract::MonthToMonth => -0.75,
                Contract::OneYear => 0.35,
                Contract::TwoYear => 0.95,
            };
            let engagement = 0.6 * normal(rng);
            for (addon, b) in addons.iter_mut().zip(base) {
                *addon = bernoulli_logit(rng, b + shift + engagement);
            }
        }
        addons
    }

    /// Paperless billing and payment method.
    fn billing(
        rng: &mut StdRng,
        internet: Internet,
        contract: Contract,
        senior: bool,
    ) -> (bool, usize) {
        // 6. Billing habits.
        let paperless = {
            let by_internet = match internet {
                Internet::Dsl => 0.2,
                Internet::Fiber => 1.2,
                Internet::Absent => -0.9,
            };
            let by_contract = match contract {
                Contract::MonthToMonth => 0.2,
                Contract::OneYear => -0.1,
                Contract::TwoYear => -0.35,
            };
            bernoulli_logit(
                rng,
                by_internet + by_contract + if senior { 0.3 } else { 0.0 },
            )
        };
        let mut pay_w = match contract {
            Contract::MonthToMonth => [0.15, 0.14, 0.48, 0.23],
            Contract::OneYear => [0.265, 0.27, 0.235, 0.23],
            Contract::TwoYear => [0.33, 0.345, 0.10, 0.225],
        };
        let pay_factor = match internet {
            Internet::Dsl => [1.0, 1.0, 0.85, 1.15],
            Internet::Fiber => [1.0, 1.0, 1.5, 0.35],
            Internet::Absent => [1.0, 1.0, 0.25, 2.2],
        };
        for (w, f) in pay_w.iter_mut().zip(pay_factor) {
            *w *= f;
        }
        let payment = pick(rng, &pay_w);
        (paperless, payment)
    }

    /// Monthly and total charges, from the price list, so they carry service info.
    #[allow(clippy::too_many_arguments)]
    fn charges(
        rng: &mut StdRng,
        phone: bool,
        multiple_lines: bool,
        internet: Internet,
        addons: &[bool; 6],
        tenure: u32,
        t: f64,
    ) -> (f64, f64) {
        // 7. Charges come from the price list, so they carry service info.
        let mut monthly = 0.0;
        if phone {
            monthly += 20.0;
        }
        if multiple_lines {
            monthly += 5.0;
        }
        monthly += match internet {
            Internet::Dsl => 25.0,
            Internet::Fiber => 50.0,
            Internet::Absent => 0.0,
        };
        for (has, price) in addons.iter().zip(ADDON_PRICE) {
            if *has {
                monthly += price;
            }
        }
        let monthly = round_to_nickel((monthly + normal(rng)).clamp(18.25, 118.75));

        // 8. Lifetime spend: exact for the first month, drifting after.
        let total = if tenure == 0 {
            0.0
        } else {
            // Drift grows like a random walk over the billed months and is
            // larger for bigger bills; the ratio bounds keep rare draws sane.
            let expected = t * monthly;
            let drift = (4.5 + 0.1 * monthly) * (t - 1.0).sqrt() * normal(rng);
            round_to_nickel((expected + drift).clamp((0.6 * expected).max(monthly), 1.6 * expected))
        };
        (monthly, total)
    }

    /// The churn log-odds of a customer with tenure.
    #[allow(clippy::too_many_arguments)]
    fn churn_logit(
        contract: Contract,
        t: f64,
        internet: Internet,
        monthly: f64,
        payment: usize,
        addons: &[bool; 6],
        senior: bool,
        paperless: bool,
    ) -> f64 {
        let mut logit = 0.05;
        logit += match contract {
            Contract::MonthToMonth => 0.9,
            Contract::OneYear => 0.0,
            Contract::TwoYear => -1.0,
        };
        logit -= 0.75 * (1.0 + t).ln();
        logit += match internet {
            Internet::Fiber => 0.6,
            Internet::Dsl => 0.0,
            Internet::Absent => -0.7,
        };
        logit += 0.25 * (monthly - 65.0) / 30.0;
        if payment == ELECTRONIC_CHECK {
            logit += 0.4;
        }
        if addons[SECURITY] {
            logit -= 0.4;
        }
        if addons[TECH_SUPPORT] {
            logit -= 0.35;
        }
        if senior {
            logit += 0.3;
        }
        if paperless {
            logit += 0.35;
        }
        logit
    }

    fn into_row(self, id: String) -> [String; 21] {
        let yes_no = |b: bool| if b { "Yes" } else { "No" }.to_string();
        let addon = |b: bool| match self.internet {
            Internet::Absent => "No internet service".to_string(),
            _ => yes_no(b),
        };
        [
            id,
            if self.male { "Male" } else { "Female" }.to_string(),
            if self.senior { "1" } else { "0" }.to_string(),
            yes_no(self.partner),
            yes_no(self.dependents),
            self.tenure.to_string(),
            yes_no(self.phone),
            if self.phone {
                yes_no(self.multiple_lines)
            } else {
                "No phone service".to_string()
            },
            match self.internet {
                Internet::Dsl => "DSL",
                Internet::Fiber => "Fiber optic",
                Internet::Absent => "No",
            }
            .to_string(),
            addon(self.addons[0]),
            addon(self.addons[1]),
            addon(self.addons[2]),
            addon(self.addons[3]),
            addon(self.addons[4]),
            addon(self.addons[5]),
            match self.contract {
                Contract::MonthToMonth => "Month-to-month",
                Contract::OneYear => "One year",
                Contract::TwoYear => "Two year",
            }
            .to_string(),
            yes_no(self.paperless),
            PAYMENTS[self.payment].to_string(),
            money(self.monthly),
            if self.tenure == 0 {
                // The real file's exact blank form.
                " ".to_string()
            } else {
                money(self.total)
            },
            yes_no(self.churn),
        ]
    }
}

/// Standard normal via Box–Muller (one value per call; simplicity over speed).
fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1], keeps ln finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

fn bernoulli_logit(rng: &mut StdRng, logit: f64) -> bool {
    rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp())
}

/// Index drawn with probability proportional to `weights`.
fn pick(rng: &mut StdRng, weights: &[f64]) -> usize {
    let mut x = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn round_to_nickel(x: f64) -> f64 {
    (x * 20.0).round() / 20.0
}

/// Formats like the real file: cents without trailing zeros
/// (`29.85`, `42.3`, `84`).
fn money(x: f64) -> String {
    let cents = (x * 100.0).round() as i64;
    let (whole, frac) = (cents / 100, cents % 100);
    if frac == 0 {
        format!("{whole}")
    } else if frac % 10 == 0 {
        format!("{whole}.{}", frac / 10)
    } else {
        format!("{whole}.{frac:02}")
    }
}

/// Number of distinct `NNNN-XXXXX` ids.
const ID_SPACE: u64 = 10_000 * 26u64.pow(5);
const ID_BITS_MASK: u64 = (1 << 37) - 1; // 2^37 > ID_SPACE

/// Keyed bijection on [0, ID_SPACE): a bijective 37-bit mixer plus cycle
/// walking (re-apply until the value lands in range), so ids never collide.
fn customer_id(index: u64, key: u64) -> String {
    let mut x = index;
    loop {
        x = mix37(x, key);
        if x < ID_SPACE {
            break;
        }
    }
    let digits = x % 10_000;
    let mut rest = x / 10_000;
    let mut letters = [b'A'; 5];
    for l in letters.iter_mut().rev() {
        *l = b'A' + (rest % 26) as u8;
        rest /= 26;
    }
    format!(
        "{digits:04}-{}",
        std::str::from_utf8(&letters).expect("ASCII letters")
    )
}

/// Each step (xor/add a constant, multiply by an odd number, xorshift right)
/// is invertible modulo 2^37, so the whole function is a permutation.
fn mix37(mut x: u64, key: u64) -> u64 {
    x = (x ^ key) & ID_BITS_MASK;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & ID_BITS_MASK;
    x ^= x >> 19;
    x = x.wrapping_add(key >> 27) & ID_BITS_MASK;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) & ID_BITS_MASK;
    x ^= x >> 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    const REAL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/telco-customer-churn.csv"
    );

    fn col(name: &str) -> usize {
        COLUMNS.iter().position(|c| *c == name).unwrap()
    }

    fn real_rows() -> (Vec<String>, Vec<csv::StringRecord>) {
        let mut r = csv::Reader::from_path(REAL).expect("real churn CSV readable");
        let header = r.headers().unwrap().iter().map(str::to_string).collect();
        let rows = r.records().map(|x| x.unwrap()).collect();
        (header, rows)
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a: Vec<_> = generate(500, 42).collect();
        let b: Vec<_> = generate(500, 42).collect();
        assert_eq!(a, b);
        // Shorter runs are prefixes of longer ones.
        let c: Vec<_> = generate(100, 42).collect();
        assert_eq!(c[..], a[..100]);
    }

    #[test]
    fn different_seeds_differ() {
        let a: Vec<_> = generate(200, 1).collect();
        let b: Vec<_> = generate(200, 2).collect();
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert_eq!(same, 0);
        assert_ne!(a[0][0], b[0][0]);
    }

    #[test]
    fn header_matches_real_file() {
        let (header, _) = real_rows();
        assert_eq!(header, COLUMNS);
        let mut buf = Vec::new();
        assert_eq!(write_csv(&mut buf, 3, 7).unwrap(), 3);
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.lines().next().unwrap(), COLUMNS.join(","));
        assert_eq!(text.matches("\r\n").count(), 4);
    }

    #[test]
    fn categorical_values_come_from_real_vocabulary() {
        let numeric = ["customerID", "tenure", "MonthlyCharges", "TotalCharges"];
        let (_, real) = real_rows();
        let mut vocab: HashMap<usize, HashSet<String>> = HashMap::new();
        for r in &real {
            for (i, v) in r.iter().enumerate() {
                vocab.entry(i).or_default().insert(v.to_string());
            }
        }
        let mut seen: HashMap<usize, HashSet<String>> = HashMap::new();
        for row in generate(20_000, 3) {
            for (i, v) in row.iter().enumerate() {
                if !numeric.contains(&COLUMNS[i]) {
                    assert!(
                        vocab[&i].contains(v),
                        "{} = {v:?} not in real file",
                        COLUMNS[i]
                    );
                    seen.entry(i).or_default().insert(v.clone());
                }
            }
        }
        // Every real category shows up too (no value silently never drawn).
        for (i, s) in seen {
            assert_eq!(s, vocab[&i], "column {}", COLUMNS[i]);
        }
    }

    #[test]
    fn value_formats_and_consistency() {
        let mut ids = HashSet::new();
        for row in generate(20_000, 11) {
            let id = row[0].as_bytes();
            assert!(id.len() == 10 && id[4] == b'-', "{}", row[0]);
            assert!(id[..4].iter().all(u8::is_ascii_digit));
            assert!(id[5..].iter().all(u8::is_ascii_uppercase));
            assert!(ids.insert(row[0].clone()), "duplicate id {}", row[0]);

            let tenure: u32 = row[col("tenure")].parse().unwrap();
            assert!(tenure <= 72);
            let m = &row[col("MonthlyCharges")];
            let mf: f64 = m.parse().unwrap();
            assert!((18.25..=118.75).contains(&mf), "{m}");
            assert!(!m.ends_with('0') || !m.contains('.'), "{m}");

            let no_internet = row[col("InternetService")] == "No";
            for c in ["OnlineSecurity", "StreamingMovies", "TechSupport"] {
                assert_eq!(row[col(c)] == "No internet service", no_internet);
            }
            let no_phone = row[col("PhoneService")] == "No";
            assert_eq!(row[col("MultipleLines")] == "No phone service", no_phone);
        }
    }

    #[test]
    fn total_charges_blank_iff_tenure_zero() {
        let mut zeros = 0;
        for row in generate(50_000, 5) {
            let blank = row[col("TotalCharges")] == " ";
            let zero = row[col("tenure")] == "0";
            assert_eq!(blank, zero, "{row:?}");
            if zero {
                zeros += 1;
            } else {
                let total: f64 = row[col("TotalCharges")].parse().unwrap();
                let monthly: f64 = row[col("MonthlyCharges")].parse().unwrap();
                let tenure: f64 = row[col("tenure")].parse().unwrap();
                let expected = tenure * monthly;
                assert!(total >= monthly && total >= 0.59 * expected && total <= 1.61 * expected);
                if tenure == 1.0 {
                    assert_eq!(total, monthly);
                }
            }
        }
        assert!(zeros > 0, "tenure-0 rows should occur");
        // The blank is written bare, as in the real file (`..., ,No`).
        let (_, real) = real_rows();
        assert!(real.iter().any(|r| &r[col("TotalCharges")] == " "));
    }

    #[test]
    fn churn_rate_is_realistic() {
        let rows: Vec<_> = generate(20_000, 9).collect();
        let rate = |f: &dyn Fn(&[String; 21]) -> bool| {
            let sel: Vec<_> = rows.iter().filter(|r| f(r)).collect();
            sel.iter().filter(|r| r[col("Churn")] == "Yes").count() as f64 / sel.len() as f64
        };
        let overall = rate(&|_| true);
        assert!((0.23..0.30).contains(&overall), "churn rate {overall}");
        let m2m = rate(&|r| r[col("Contract")] == "Month-to-month");
        let two = rate(&|r| r[col("Contract")] == "Two year");
        assert!(m2m > 0.3 && two < 0.08 && m2m > 5.0 * two, "{m2m} vs {two}");
    }

    #[test]
    fn money_format() {
        assert_eq!(money(29.85), "29.85");
        assert_eq!(money(42.3), "42.3");
        assert_eq!(money(84.0), "84");
        assert_eq!(money(1840.75), "1840.75");
        assert_eq!(money(20.05), "20.05");
    }
}
