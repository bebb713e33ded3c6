//! Harm weights by category: each incident counts as its category's weight instead of
//! 1, so the backtest scores how much *harm* a method's places capture, not how many
//! incidents (the Cambridge Crime Harm Index and the ONS Crime Severity Score weigh
//! offences by the sentencing they draw).
//!
//! No weights are bundled: the ONS publishes its Crime Severity Score weights per Home
//! Office offence code, and police.uk's categories each merge many offences, so a
//! category's weight is an average over offences that depends on the local mix (an
//! approximation a force can make from its own recorded crime, not one to ship as
//! fact). The analyst supplies the file, and the output names it and its source.
//!
//! # File
//! CSV with a header row: `category` (police.uk's label, as `Violence and sexual
//! offences`, or the short name, as `violent-crime`), `weight` (a number above 0) and an
//! optional `source` (free text, carried into the output). One row per category; every
//! category the filter holds incidents of needs one.

use std::path::Path;

use thiserror::Error;

use crate::model::{CrimeType, TypeSet};

/// Why a weights file could not be used.
#[derive(Debug, Error, PartialEq)]
pub enum HarmError {
    #[error("{file}: cannot read it: {why}")]
    Read { file: String, why: String },
    #[error("{file} line {line}, field {field}: {why}")]
    Field {
        file: String,
        line: u64,
        field: &'static str,
        why: String,
    },
    #[error(
        "{file}: no weight for {types} (every category the filter holds incidents of needs one)"
    )]
    Missing { file: String, types: String },
}

/// A category's weight, from the file `file`.
#[derive(Debug, Clone, PartialEq)]
pub struct HarmWeights {
    /// The file's name as given.
    pub file: String,
    /// By category code; None for a category the file does not weigh.
    weights: Vec<Option<f64>>,
    /// The distinct `source` texts, in file order.
    pub sources: Vec<String>,
}

impl HarmWeights {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    /// [`HarmError`] naming the file, line and field.
    pub fn read(path: &Path) -> Result<Self, HarmError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| HarmError::Read {
            file: file.clone(),
            why: e.to_string(),
        })?;
        Self::parse(&file, &text)
    }

    /// Parses the CSV `text` of the file named `file`.
    ///
    /// # Errors
    /// [`HarmError::Field`] for a missing column, a category that is not one, a repeated
    /// one, or a weight that is not a number above 0.
    pub fn parse(file: &str, text: &str) -> Result<Self, HarmError> {
        let field = |line: u64, field: &'static str, why: String| HarmError::Field {
            file: file.to_owned(),
            line,
            field,
            why,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = rdr
            .headers()
            .map_err(|e| field(1, "header", e.to_string()))?
            .clone();
        let col = |name: &'static str| {
            header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    field(
                        1,
                        name,
                        format!("no {name} column (columns: category, weight, source)"),
                    )
                })
        };
        let (cat_col, weight_col) = (col("category")?, col("weight")?);
        let source_col = col("source").ok();
        let mut weights = vec![None; 256];
        let mut sources: Vec<String> = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i as u64 + 2;
            let rec = rec.map_err(|e| field(line, "category", e.to_string()))?;
            let cat = rec.get(cat_col).unwrap_or("");
            let t = CrimeType::parse_lenient(cat)
                .ok_or_else(|| field(line, "category", format!("{cat:?} is not a category")))?;
            let raw = rec.get(weight_col).unwrap_or("");
            let w: f64 = raw
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w > 0.0)
                .ok_or_else(|| field(line, "weight", format!("{raw:?} is not a number above 0")))?;
            let slot = &mut weights[t as usize];
            if slot.is_some() {
                return Err(field(
                    line,
                    "category",
                    format!("{} is weighed twice", t.label()),
                ));
            }
            *slot = Some(w);
            if let Some(s) = source_col
                .and_then(|c| rec.get(c))
                .filter(|s| !s.is_empty())
                && !sources.iter().any(|x| x == s)
            {
                sources.push(s.to_owned());
            }
        }
        Ok(HarmWeights {
            file: file.to_owned(),
            weights,
            sources,
        })
    }

    /// The weight of the category with code `code`, if the file gives one.
    pub fn get(&self, code: u8) -> Option<f64> {
        self.weights.get(usize::from(code)).copied().flatten()
    }

    /// The error for the categories `missing`, none of which the file weighs.
    pub fn missing(&self, missing: TypeSet) -> HarmError {
        HarmError::Missing {
            file: self.file.clone(),
            types: missing
                .iter()
                .map(CrimeType::label)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The weights as text, one per category code (for cache keys).
    pub fn key(&self) -> String {
        let mut k = String::new();
        for (code, w) in self.weights.iter().enumerate() {
            if let Some(w) = w {
                k.push_str(&format!("{code}:{:x};", w.to_bits()));
            }
        }
        k
    }

    /// The weights as JSON for the map: the file's name (not its directory), its
    /// sources, and each weighed category's slug, label and weight.
    pub fn describe(&self) -> serde_json::Value {
        let name = Path::new(&self.file)
            .file_name()
            .map_or_else(|| self.file.clone(), |n| n.to_string_lossy().into_owned());
        let categories: Vec<serde_json::Value> = CrimeType::ALL
            .iter()
            .filter_map(|&t| {
                self.get(t as u8).map(
                    |w| serde_json::json!({ "slug": t.slug(), "label": t.label(), "weight": w }),
                )
            })
            .collect();
        serde_json::json!({ "file": name, "sources": self.sources, "categories": categories })
    }

    /// How many categories the file weighs.
    pub fn len(&self) -> usize {
        self.weights.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_or_short_names_with_their_weights_and_sources() {
        let w = HarmWeights::parse(
            "w.csv",
            "category,weight,source\n\
             Burglary,433.5,local mix 2023\n\
             violent-crime, 1020 ,local mix 2023\n\
             Shoplifting,20,\n",
        )
        .expect("parses");
        assert_eq!(w.get(CrimeType::Burglary as u8), Some(433.5));
        assert_eq!(
            w.get(CrimeType::ViolenceAndSexualOffences as u8),
            Some(1020.0)
        );
        assert_eq!(w.get(CrimeType::Shoplifting as u8), Some(20.0));
        assert_eq!(w.get(CrimeType::Robbery as u8), None);
        assert_eq!(w.len(), 3);
        assert_eq!(w.sources, vec!["local mix 2023".to_owned()]);
    }

    #[test]
    fn bad_files_name_the_line_and_field() {
        let err = |text: &str| {
            HarmWeights::parse("w.csv", text)
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            err("category,weight\nBurglary,433\nBurglary,12\n"),
            "w.csv line 3, field category: Burglary is weighed twice"
        );
        assert_eq!(
            err("category,weight\nBurglary,0\n"),
            "w.csv line 2, field weight: \"0\" is not a number above 0"
        );
        assert_eq!(
            err("category,weight\nBurglary,NaN\n"),
            "w.csv line 2, field weight: \"NaN\" is not a number above 0"
        );
        assert_eq!(
            err("category,weight\nBurglary,1\nKnives,3\n"),
            "w.csv line 3, field category: \"Knives\" is not a category"
        );
        assert!(
            err("type,weight\nBurglary,1\n")
                .starts_with("w.csv line 1, field category: no category column")
        );
        assert!(err("category\nBurglary\n").contains("field weight: no weight column"));
    }
}
