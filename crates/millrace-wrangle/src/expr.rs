//! SQL-like expressions for `filter` and `derive` steps: `tenure > 0`,
//! `MonthlyCharges * 12`, `CASE WHEN tenure < 12 THEN 'new' ELSE 'settled' END`.
//!
//! Text is parsed by `sqlparser` (the parser DataFusion uses, so the syntax is the one
//! `millrace query` accepts) into a small tree of our own that serialises with the fitted
//! recipe and evaluates column-wise on a [`Frame`] — a million rows or one record, same code.
//! NULL follows SQL: arithmetic and comparisons with a missing value are missing, AND/OR use
//! three-valued logic, and a filter keeps a row only when its predicate is true.

use serde::{Deserialize, Serialize};
use sqlparser::ast;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::error::WrangleError;
use crate::frame::{Column, Frame, Kind, format_num};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Func {
    Abs,
    Sqrt,
    Ln,
    Log10,
    Exp,
    Pow,
    Round,
    Floor,
    Ceil,
    Least,
    Greatest,
    Coalesce,
    Lower,
    Upper,
    Trim,
    Length,
}

impl Func {
    fn parse(name: &str) -> Option<Func> {
        Some(match name.to_ascii_lowercase().as_str() {
            "abs" => Func::Abs,
            "sqrt" => Func::Sqrt,
            "ln" | "log" => Func::Ln,
            "log10" => Func::Log10,
            "exp" => Func::Exp,
            "pow" | "power" => Func::Pow,
            "round" => Func::Round,
            "floor" => Func::Floor,
            "ceil" | "ceiling" => Func::Ceil,
            "least" => Func::Least,
            "greatest" => Func::Greatest,
            "coalesce" => Func::Coalesce,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "trim" | "btrim" => Func::Trim,
            "length" | "char_length" => Func::Length,
            _ => return None,
        })
    }

    fn arity(self) -> (usize, usize) {
        match self {
            Func::Pow => (2, 2),
            Func::Round => (1, 2),
            Func::Least | Func::Greatest | Func::Coalesce => (1, usize::MAX),
            _ => (1, 1),
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    Column(String),
    Number(f64),
    Text(String),
    Null,
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Case {
        operand: Option<Box<Expr>>,
        when: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Call {
        func: Func,
        args: Vec<Expr>,
    },
}

/// An evaluated value: a column, or an untyped NULL that takes whichever kind it meets.
enum Val {
    Num(Vec<f64>),
    Str(Vec<Option<String>>),
    Null,
}

impl Val {
    fn num(self, rows: usize, what: &str) -> Result<Vec<f64>, String> {
        match self {
            Val::Num(v) => Ok(v),
            Val::Null => Ok(vec![f64::NAN; rows]),
            Val::Str(_) => Err(format!("{what} needs numbers, got text")),
        }
    }

    fn str(self, rows: usize) -> Vec<Option<String>> {
        match self {
            Val::Str(v) => v,
            Val::Num(v) => v.into_iter().map(format_num).collect(),
            Val::Null => vec![None; rows],
        }
    }
}

fn truth(x: f64) -> Option<bool> {
    if x.is_nan() { None } else { Some(x != 0.0) }
}

fn from_truth(b: Option<bool>) -> f64 {
    match b {
        Some(true) => 1.0,
        Some(false) => 0.0,
        None => f64::NAN,
    }
}

impl Expr {
    /// Parses `text`; errors quote the expression.
    pub fn parse(text: &str) -> Result<Expr, WrangleError> {
        let err = |message: String| WrangleError::Expr {
            expr: text.to_owned(),
            message,
        };
        let mut parser = Parser::new(&GenericDialect {})
            .try_with_sql(text)
            .map_err(|e| err(e.to_string()))?;
        let parsed = parser.parse_expr().map_err(|e| err(e.to_string()))?;
        // Anything after the expression (a stray `;` or a second expression) is a mistake.
        let rest = parser.peek_token();
        if rest.token != sqlparser::tokenizer::Token::EOF {
            return Err(err(format!(
                "unexpected `{}` after the expression",
                rest.token
            )));
        }
        convert(&parsed).map_err(err)
    }

    /// Column names the expression reads.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Column(c) = e
                && !out.contains(c)
            {
                out.push(c.clone());
            }
        });
        out
    }

    fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Neg(e) | Expr::Not(e) => e.walk(f),
            Expr::Binary { left, right, .. } => {
                left.walk(f);
                right.walk(f);
            }
            Expr::IsNull { expr, .. } => expr.walk(f),
            Expr::InList { expr, list, .. } => {
                expr.walk(f);
                list.iter().for_each(|e| e.walk(f));
            }
            Expr::Case {
                operand,
                when,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.walk(f);
                }
                for (c, r) in when {
                    c.walk(f);
                    r.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Call { args, .. } => args.iter().for_each(|e| e.walk(f)),
            Expr::Column(_) | Expr::Number(_) | Expr::Text(_) | Expr::Null => {}
        }
    }

    /// Evaluates on every row of `frame`; a NULL-only result is a number column.
    pub fn eval(&self, frame: &Frame) -> Result<Column, String> {
        Ok(match self.value(frame)? {
            Val::Num(v) => Column::Num(v),
            Val::Str(v) => Column::Str(v),
            Val::Null => Column::Num(vec![f64::NAN; frame.rows()]),
        })
    }

    /// Evaluates as a predicate: true rows only.
    pub fn mask(&self, frame: &Frame) -> Result<Vec<bool>, String> {
        match self.value(frame)? {
            Val::Num(v) => Ok(v.iter().map(|x| truth(*x) == Some(true)).collect()),
            Val::Null => Ok(vec![false; frame.rows()]),
            Val::Str(_) => Err("a filter must be true or false, this expression gives text".into()),
        }
    }

    fn value(&self, frame: &Frame) -> Result<Val, String> {
        let rows = frame.rows();
        Ok(match self {
            Expr::Column(name) => match frame.column(name) {
                Some(Column::Num(v)) => Val::Num(v.clone()),
                Some(Column::Str(v)) => Val::Str(v.clone()),
                None => {
                    return Err(format!(
                        "unknown column `{name}` (columns: {})",
                        frame.names().join(", ")
                    ));
                }
            },
            Expr::Number(x) => Val::Num(vec![*x; rows]),
            Expr::Text(s) => Val::Str(vec![Some(s.clone()); rows]),
            Expr::Null => Val::Null,
            Expr::Neg(e) => Val::Num(
                e.value(frame)?
                    .num(rows, "`-`")?
                    .into_iter()
                    .map(|x| -x)
                    .collect(),
            ),
            Expr::Not(e) => Val::Num(
                e.value(frame)?
                    .num(rows, "NOT")?
                    .into_iter()
                    .map(|x| from_truth(truth(x).map(|b| !b)))
                    .collect(),
            ),
            Expr::Binary { op, left, right } => {
                binary(*op, left.value(frame)?, right.value(frame)?, rows)?
            }
            Expr::IsNull { expr, negated } => {
                let missing: Vec<bool> = match expr.value(frame)? {
                    Val::Num(v) => v.iter().map(|x| x.is_nan()).collect(),
                    Val::Str(v) => v.iter().map(Option::is_none).collect(),
                    Val::Null => vec![true; rows],
                };
                Val::Num(
                    missing
                        .into_iter()
                        .map(|m| f64::from(u8::from(m != *negated)))
                        .collect(),
                )
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                // x IN (a, b) = x = a OR x = b, with SQL's NULL rules.
                let mut acc = vec![0.0; rows];
                for item in list {
                    let eq = binary(BinOp::Eq, expr.value(frame)?, item.value(frame)?, rows)?
                        .num(rows, "IN")?;
                    acc = acc.iter().zip(&eq).map(|(a, b)| or(*a, *b)).collect();
                }
                if *negated {
                    acc = acc
                        .into_iter()
                        .map(|x| from_truth(truth(x).map(|b| !b)))
                        .collect();
                }
                Val::Num(acc)
            }
            Expr::Case {
                operand,
                when,
                otherwise,
            } => case(frame, operand.as_deref(), when, otherwise.as_deref())?,
            Expr::Call { func, args } => call(*func, args, frame)?,
        })
    }
}

fn or(a: f64, b: f64) -> f64 {
    match (truth(a), truth(b)) {
        (Some(true), _) | (_, Some(true)) => 1.0,
        (Some(false), Some(false)) => 0.0,
        _ => f64::NAN,
    }
}

fn and(a: f64, b: f64) -> f64 {
    match (truth(a), truth(b)) {
        (Some(false), _) | (_, Some(false)) => 0.0,
        (Some(true), Some(true)) => 1.0,
        _ => f64::NAN,
    }
}

fn binary(op: BinOp, l: Val, r: Val, rows: usize) -> Result<Val, String> {
    use BinOp::*;
    let cmp = matches!(op, Eq | NotEq | Lt | LtEq | Gt | GtEq);
    if op == Concat {
        let (l, r) = (l.str(rows), r.str(rows));
        return Ok(Val::Str(
            l.into_iter().zip(r).map(|(a, b)| Some(a? + &b?)).collect(),
        ));
    }
    if cmp && (matches!(l, Val::Str(_)) || matches!(r, Val::Str(_))) {
        if matches!(l, Val::Num(_)) || matches!(r, Val::Num(_)) {
            return Err("cannot compare text with a number (cast the column first)".into());
        }
        let (l, r) = (l.str(rows), r.str(rows));
        return Ok(Val::Num(
            l.iter()
                .zip(&r)
                .map(|(a, b)| match (a, b) {
                    (Some(a), Some(b)) => from_truth(Some(compare(op, a.as_str().cmp(b.as_str())))),
                    _ => f64::NAN,
                })
                .collect(),
        ));
    }
    let what = format!("`{}`", op_text(op));
    let (l, r) = (l.num(rows, &what)?, r.num(rows, &what)?);
    let f: fn(f64, f64) -> f64 = match op {
        Add => |a, b| a + b,
        Sub => |a, b| a - b,
        Mul => |a, b| a * b,
        // Division by zero is missing, not infinity: a feature must stay finite.
        Div => |a, b| if b == 0.0 { f64::NAN } else { a / b },
        Mod => |a, b| if b == 0.0 { f64::NAN } else { a % b },
        And => and,
        Or => or,
        _ => |_, _| f64::NAN,
    };
    if cmp {
        return Ok(Val::Num(
            l.iter()
                .zip(&r)
                .map(|(a, b)| match a.partial_cmp(b) {
                    Some(o) if !a.is_nan() && !b.is_nan() => from_truth(Some(compare(op, o))),
                    _ => f64::NAN,
                })
                .collect(),
        ));
    }
    Ok(Val::Num(l.iter().zip(&r).map(|(a, b)| f(*a, *b)).collect()))
}

fn compare(op: BinOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        BinOp::Eq => o == Equal,
        BinOp::NotEq => o != Equal,
        BinOp::Lt => o == Less,
        BinOp::LtEq => o != Greater,
        BinOp::Gt => o == Greater,
        BinOp::GtEq => o != Less,
        _ => false,
    }
}

fn op_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Eq => "=",
        BinOp::NotEq => "<>",
        BinOp::Lt => "<",
        BinOp::LtEq => "<=",
        BinOp::Gt => ">",
        BinOp::GtEq => ">=",
        BinOp::And => "AND",
        BinOp::Or => "OR",
        BinOp::Concat => "||",
    }
}

fn case(
    frame: &Frame,
    operand: Option<&Expr>,
    when: &[(Expr, Expr)],
    otherwise: Option<&Expr>,
) -> Result<Val, String> {
    let rows = frame.rows();
    let mut results = Vec::with_capacity(when.len() + 1);
    let mut conds = Vec::with_capacity(when.len());
    for (c, r) in when {
        let cond = match operand {
            Some(o) => binary(BinOp::Eq, o.value(frame)?, c.value(frame)?, rows)?,
            None => c.value(frame)?,
        };
        conds.push(cond.num(rows, "WHEN")?);
        results.push(r.value(frame)?);
    }
    results.push(match otherwise {
        Some(e) => e.value(frame)?,
        None => Val::Null,
    });
    let text = results.iter().any(|v| matches!(v, Val::Str(_)));
    if text && results.iter().any(|v| matches!(v, Val::Num(_))) {
        return Err("CASE results mix text and numbers".into());
    }
    let pick = |row: usize| {
        conds
            .iter()
            .position(|c| truth(c[row]) == Some(true))
            .unwrap_or(when.len())
    };
    if text {
        let results: Vec<Vec<Option<String>>> = results.into_iter().map(|v| v.str(rows)).collect();
        Ok(Val::Str(
            (0..rows).map(|i| results[pick(i)][i].clone()).collect(),
        ))
    } else {
        let results: Vec<Vec<f64>> = results
            .into_iter()
            .map(|v| v.num(rows, "CASE"))
            .collect::<Result<_, _>>()?;
        Ok(Val::Num((0..rows).map(|i| results[pick(i)][i]).collect()))
    }
}

fn call(func: Func, args: &[Expr], frame: &Frame) -> Result<Val, String> {
    let rows = frame.rows();
    let mut vals = args
        .iter()
        .map(|a| a.value(frame))
        .collect::<Result<Vec<_>, _>>()?;
    let name = format!("{func:?}").to_lowercase();
    let unary = |vals: &mut Vec<Val>, f: fn(f64) -> f64| -> Result<Val, String> {
        let v = vals.remove(0).num(rows, &name)?;
        Ok(Val::Num(v.into_iter().map(f).collect()))
    };
    let text = |vals: &mut Vec<Val>, f: fn(&str) -> String| -> Val {
        Val::Str(
            vals.remove(0)
                .str(rows)
                .into_iter()
                .map(|s| s.map(|s| f(&s)))
                .collect(),
        )
    };
    // Out-of-domain inputs are missing rather than NaN-as-a-number or infinity.
    let finite = |x: f64| if x.is_finite() { x } else { f64::NAN };
    Ok(match func {
        Func::Abs => unary(&mut vals, f64::abs)?,
        Func::Sqrt => unary(&mut vals, |x| if x < 0.0 { f64::NAN } else { x.sqrt() })?,
        Func::Ln => unary(&mut vals, |x| if x <= 0.0 { f64::NAN } else { x.ln() })?,
        Func::Log10 => unary(&mut vals, |x| if x <= 0.0 { f64::NAN } else { x.log10() })?,
        Func::Exp => unary(&mut vals, |x| {
            let y = x.exp();
            if y.is_finite() { y } else { f64::NAN }
        })?,
        Func::Floor => unary(&mut vals, f64::floor)?,
        Func::Ceil => unary(&mut vals, f64::ceil)?,
        Func::Round => {
            let x = vals.remove(0).num(rows, "round")?;
            let d = match vals.pop() {
                Some(v) => v.num(rows, "round")?,
                None => vec![0.0; rows],
            };
            Val::Num(
                x.iter()
                    .zip(&d)
                    .map(|(x, d)| {
                        let p = 10f64.powi(*d as i32);
                        finite((x * p).round() / p)
                    })
                    .collect(),
            )
        }
        Func::Pow => {
            let b = vals.remove(0).num(rows, "pow")?;
            let e = vals.remove(0).num(rows, "pow")?;
            Val::Num(b.iter().zip(&e).map(|(b, e)| finite(b.powf(*e))).collect())
        }
        Func::Least | Func::Greatest => {
            let cols = vals
                .into_iter()
                .map(|v| v.num(rows, &name))
                .collect::<Result<Vec<_>, _>>()?;
            let least = func == Func::Least;
            Val::Num(
                (0..rows)
                    .map(|i| {
                        // SQL's LEAST/GREATEST skip NULLs.
                        cols.iter().map(|c| c[i]).filter(|x| !x.is_nan()).fold(
                            f64::NAN,
                            |acc, x| {
                                if acc.is_nan() || (least && x < acc) || (!least && x > acc) {
                                    x
                                } else {
                                    acc
                                }
                            },
                        )
                    })
                    .collect(),
            )
        }
        Func::Coalesce => {
            if vals.iter().any(|v| matches!(v, Val::Str(_))) {
                let cols: Vec<Vec<Option<String>>> =
                    vals.into_iter().map(|v| v.str(rows)).collect();
                Val::Str(
                    (0..rows)
                        .map(|i| cols.iter().find_map(|c| c[i].clone()))
                        .collect(),
                )
            } else {
                let cols = vals
                    .into_iter()
                    .map(|v| v.num(rows, "coalesce"))
                    .collect::<Result<Vec<_>, _>>()?;
                Val::Num(
                    (0..rows)
                        .map(|i| {
                            cols.iter()
                                .map(|c| c[i])
                                .find(|x| !x.is_nan())
                                .unwrap_or(f64::NAN)
                        })
                        .collect(),
                )
            }
        }
        Func::Lower => text(&mut vals, str::to_lowercase),
        Func::Upper => text(&mut vals, str::to_uppercase),
        Func::Trim => text(&mut vals, |s| s.trim().to_owned()),
        Func::Length => Val::Num(
            vals.remove(0)
                .str(rows)
                .iter()
                .map(|s| s.as_ref().map_or(f64::NAN, |s| s.chars().count() as f64))
                .collect(),
        ),
    })
}

fn convert(e: &ast::Expr) -> Result<Expr, String> {
    use ast::Expr as A;
    Ok(match e {
        A::Identifier(id) => Expr::Column(id.value.clone()),
        A::CompoundIdentifier(ids) => Expr::Column(
            ids.iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        A::Value(v) => match &v.value {
            ast::Value::Number(n, _) => {
                Expr::Number(n.parse::<f64>().map_err(|_| format!("bad number `{n}`"))?)
            }
            ast::Value::SingleQuotedString(s) => Expr::Text(s.clone()),
            ast::Value::Boolean(b) => Expr::Number(f64::from(u8::from(*b))),
            ast::Value::Null => Expr::Null,
            other => return Err(format!("unsupported literal `{other}`")),
        },
        A::Nested(e) => convert(e)?,
        A::UnaryOp { op, expr } => match op {
            ast::UnaryOperator::Minus => Expr::Neg(Box::new(convert(expr)?)),
            ast::UnaryOperator::Plus => convert(expr)?,
            ast::UnaryOperator::Not => Expr::Not(Box::new(convert(expr)?)),
            other => return Err(format!("unsupported operator `{other}`")),
        },
        A::BinaryOp { left, op, right } => {
            use ast::BinaryOperator as B;
            let op = match op {
                B::Plus => BinOp::Add,
                B::Minus => BinOp::Sub,
                B::Multiply => BinOp::Mul,
                B::Divide => BinOp::Div,
                B::Modulo => BinOp::Mod,
                B::Eq => BinOp::Eq,
                B::NotEq => BinOp::NotEq,
                B::Lt => BinOp::Lt,
                B::LtEq => BinOp::LtEq,
                B::Gt => BinOp::Gt,
                B::GtEq => BinOp::GtEq,
                B::And => BinOp::And,
                B::Or => BinOp::Or,
                B::StringConcat => BinOp::Concat,
                other => return Err(format!("unsupported operator `{other}`")),
            };
            Expr::Binary {
                op,
                left: Box::new(convert(left)?),
                right: Box::new(convert(right)?),
            }
        }
        A::IsNull(e) => Expr::IsNull {
            expr: Box::new(convert(e)?),
            negated: false,
        },
        A::IsNotNull(e) => Expr::IsNull {
            expr: Box::new(convert(e)?),
            negated: true,
        },
        A::InList {
            expr,
            list,
            negated,
        } => Expr::InList {
            expr: Box::new(convert(expr)?),
            list: list.iter().map(convert).collect::<Result<_, _>>()?,
            negated: *negated,
        },
        A::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let x = convert(expr)?;
            let within = Expr::Binary {
                op: BinOp::And,
                left: Box::new(Expr::Binary {
                    op: BinOp::GtEq,
                    left: Box::new(x.clone()),
                    right: Box::new(convert(low)?),
                }),
                right: Box::new(Expr::Binary {
                    op: BinOp::LtEq,
                    left: Box::new(x),
                    right: Box::new(convert(high)?),
                }),
            };
            if *negated {
                Expr::Not(Box::new(within))
            } else {
                within
            }
        }
        A::Case {
            operand,
            conditions,
            else_result,
            ..
        } => Expr::Case {
            operand: operand.as_deref().map(convert).transpose()?.map(Box::new),
            when: conditions
                .iter()
                .map(|w| Ok((convert(&w.condition)?, convert(&w.result)?)))
                .collect::<Result<_, String>>()?,
            otherwise: else_result
                .as_deref()
                .map(convert)
                .transpose()?
                .map(Box::new),
        },
        A::Function(f) => {
            let name = f.name.to_string();
            let func = Func::parse(&name).ok_or_else(|| {
                format!(
                    "unknown function `{name}` (known: abs, sqrt, ln, log10, exp, pow, round, floor, \
                     ceil, least, greatest, coalesce, lower, upper, trim, length)"
                )
            })?;
            let args: Vec<Expr> = match &f.args {
                ast::FunctionArguments::List(l) => l
                    .args
                    .iter()
                    .map(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => convert(e),
                        other => Err(format!("unsupported argument `{other}` to {name}")),
                    })
                    .collect::<Result<_, _>>()?,
                ast::FunctionArguments::None => Vec::new(),
                ast::FunctionArguments::Subquery(_) => {
                    return Err("subqueries are not supported".into());
                }
            };
            let (lo, hi) = func.arity();
            if args.len() < lo || args.len() > hi {
                return Err(format!(
                    "{name} takes {} argument(s), got {}",
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo} or more")
                    },
                    args.len()
                ));
            }
            Expr::Call { func, args }
        }
        A::Trim { expr, .. } => Expr::Call {
            func: Func::Trim,
            args: vec![convert(expr)?],
        },
        A::Ceil { expr, .. } => Expr::Call {
            func: Func::Ceil,
            args: vec![convert(expr)?],
        },
        A::Floor { expr, .. } => Expr::Call {
            func: Func::Floor,
            args: vec![convert(expr)?],
        },
        other => return Err(format!("unsupported expression `{other}`")),
    })
}

/// The kind an expression produces on columns of these kinds, found by evaluating it on one
/// row of missing values (cheap, and exactly what evaluation does).
pub fn result_kind(expr: &Expr, kinds: &[(crate::frame::Name, Kind)]) -> Result<Kind, String> {
    let probe = Frame::from_record(&serde_json::Map::new(), kinds);
    Ok(expr.eval(&probe)?.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Name;

    fn frame() -> Frame {
        let rec: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"a": 3, "b": "x"}"#).unwrap();
        Frame::from_record(
            &rec,
            &[
                (Name::from("a"), Kind::Number),
                (Name::from("b"), Kind::String),
                (Name::from("n"), Kind::Number),
            ],
        )
    }

    fn num(text: &str) -> f64 {
        match Expr::parse(text).unwrap().eval(&frame()).unwrap() {
            Column::Num(v) => v[0],
            c => panic!("{text}: {c:?}"),
        }
    }

    #[test]
    fn arithmetic_logic_and_nulls_follow_sql() {
        assert_eq!(num("a * 2 + 1"), 7.0);
        assert_eq!(num("-a % 2"), -1.0);
        assert!(num("a / 0").is_nan());
        assert!(num("n + 1").is_nan());
        assert_eq!(num("a > 2 AND b = 'x'"), 1.0);
        assert!(num("n > 1").is_nan());
        assert_eq!(num("n > 1 OR a = 3"), 1.0);
        assert_eq!(num("n > 1 AND a = 4"), 0.0);
        assert_eq!(num("n IS NULL"), 1.0);
        assert_eq!(num("a BETWEEN 1 AND 3"), 1.0);
        assert_eq!(num("b IN ('y', 'x')"), 1.0);
        assert_eq!(num("a NOT IN (1, 2)"), 1.0);
        assert_eq!(
            num("CASE WHEN a < 2 THEN 10 WHEN a < 5 THEN 20 ELSE 30 END"),
            20.0
        );
        assert_eq!(num("coalesce(n, a)"), 3.0);
        assert_eq!(num("round(ln(exp(2.5)), 1)"), 2.5);
        assert_eq!(num("length(upper(b) || 'yz')"), 3.0);
        assert_eq!(num("greatest(n, 1, a)"), 3.0);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Expr::parse("a >").unwrap_err().to_string();
        assert!(e.contains("`a >`"), "{e}");
        let e = Expr::parse("frobnicate(a)").unwrap_err().to_string();
        assert!(e.contains("unknown function `frobnicate`"), "{e}");
        let e = Expr::parse("a > 1; drop").unwrap_err().to_string();
        assert!(e.contains("unexpected"), "{e}");
        let e = Expr::parse("zz + 1").unwrap().eval(&frame()).unwrap_err();
        assert!(e.contains("unknown column `zz`"), "{e}");
        let e = Expr::parse("b > 1").unwrap().eval(&frame()).unwrap_err();
        assert!(e.contains("cannot compare text"), "{e}");
        assert_eq!(
            Expr::parse("a + b2 * a").unwrap().columns(),
            vec!["a", "b2"]
        );
    }
}
