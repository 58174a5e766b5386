//! The linear model: one weight row of 62 subtype weights per known feature, a bias row and a
//! softmax temperature, and its file format.
//!
//! # File format
//! ```text
//! pingan-linear-model 1\n
//! <header: one line of JSON, see ModelHeader>\n
//! <keys: n × u64 LE> <scales: n × f32 LE> <weights: n × 62 × i8>
//! ```
//! Weights are stored quantised per feature row (`w = q · scale / 127`): a quarter of the size
//! of f32 rows for no measurable loss. They stay quantised in memory, one 64-byte-aligned row
//! per feature: scoring a text touches a few hundred rows scattered over megabytes, so one
//! cache line per row instead of four is what makes it fast.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use super::features::{FeatureConfig, Features};
use crate::text::SUBTYPE_CODES;

/// Number of classes (the taxonomy's subtypes).
pub const CLASSES: usize = 62;
const MAGIC: &str = "pingan-linear-model 1\n";

/// Keys are already hashes: the map needs no second hash.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type KeyMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

/// What a model file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelHeader {
    /// The model's name, stored as `classifier_version` with every event it classifies.
    pub name: String,
    /// The class codes, in weight-column order (must be the taxonomy's subtypes).
    pub classes: Vec<String>,
    /// Number of feature rows.
    pub features: usize,
    /// Extractor settings.
    pub feature_config: FeatureConfig,
    /// Bias per class.
    pub bias: Vec<f32>,
    /// Softmax temperature fitted on out-of-fold predictions.
    pub temperature: f32,
    /// SHA-256 of the training data (every training file's name and bytes, in name order).
    pub training_sha256: String,
    /// SHA-256 of the lexicon the rule features came from: a model is only valid with it.
    pub lexicon_sha256: String,
    /// Number of training examples.
    pub examples: usize,
    /// Training settings, for the record.
    pub training: serde_json::Value,
}

/// Why a model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not a model file.
    #[error("not a pingan model file (bad magic)")]
    Magic,
    /// The header is not valid JSON of the expected shape.
    #[error("model header: {0}")]
    Header(#[from] serde_json::Error),
    /// The classes are not the taxonomy's subtypes in order.
    #[error("model classes do not match the taxonomy (retrain the model)")]
    Classes,
    /// The payload is shorter or longer than the header says.
    #[error("model payload has {got} bytes, the header implies {want}")]
    Payload {
        /// Bytes present.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
}

/// One feature's quantised weights, one cache line: 62 weights and the row's scale.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Row {
    q: [i8; CLASSES],
    /// `max |w|` of the row as bfloat16 (the high half of an f32): a weight is
    /// `q · max / 127`. Eight bits of mantissa are finer than the 1/127 steps of `q`.
    max_bf16: u16,
}

impl Row {
    fn max(&self) -> f32 {
        f32::from_bits(u32::from(self.max_bf16) << 16)
    }
}

/// `x` rounded to bfloat16 (to nearest, ties to even; `x` is finite and ≥ 0).
fn bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.saturating_add(round) >> 16) as u16
}

/// A trained linear model.
#[derive(Clone)]
pub struct LinearModel {
    pub(crate) header: ModelHeader,
    pub(crate) index: KeyMap,
    pub(crate) rows: Vec<Row>,
    pub(crate) bias: [f32; CLASSES],
}

fn quantise(w: &[f32]) -> Row {
    let max_bf16 = bf16(w.iter().fold(0.0f32, |m, x| m.max(x.abs())));
    let row = Row {
        q: [0; CLASSES],
        max_bf16,
    };
    let max = row.max();
    let mut q = [0i8; CLASSES];
    if max > 0.0 {
        for (qc, wc) in q.iter_mut().zip(w) {
            *qc = (wc / max * 127.0).round().clamp(-127.0, 127.0) as i8;
        }
    }
    Row { q, max_bf16 }
}

impl std::fmt::Debug for LinearModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearModel")
            .field("name", &self.header.name)
            .field("features", &self.header.features)
            .finish_non_exhaustive()
    }
}

impl LinearModel {
    /// Builds a model from trained rows (row-major `keys.len() × CLASSES` weights), quantised
    /// as the file stores them, so a freshly trained model answers exactly as its file will.
    pub(crate) fn new(header: ModelHeader, keys: &[u64], weights: Vec<f32>) -> Self {
        let rows = weights.chunks_exact(CLASSES).map(quantise).collect();
        Self::from_rows(header, keys, rows)
    }

    fn from_rows(header: ModelHeader, keys: &[u64], rows: Vec<Row>) -> Self {
        let mut bias = [0.0; CLASSES];
        for (b, v) in bias.iter_mut().zip(&header.bias) {
            *b = *v;
        }
        let index = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u32))
            .collect();
        LinearModel {
            header,
            index,
            rows,
            bias,
        }
    }

    /// The header.
    pub fn header(&self) -> &ModelHeader {
        &self.header
    }

    /// The model's name (`classifier_version`).
    pub fn name(&self) -> &str {
        &self.header.name
    }

    /// Extractor settings the model was trained with.
    pub fn feature_config(&self) -> &FeatureConfig {
        &self.header.feature_config
    }

    /// Raw class scores (logits before temperature) of a text's features; rows of unknown
    /// features are skipped. `rows` receives each feature's row index (or `u32::MAX`).
    pub(crate) fn logits(
        &self,
        features: &Features,
        rows: &mut Vec<u32>,
        scaled: &mut Vec<(usize, f32)>,
    ) -> [f32; CLASSES] {
        // Three passes instead of one: the table probes, then one load per row, then the
        // arithmetic. Each pass is a loop of independent memory accesses that the CPU overlaps;
        // in one loop every probe waited for the previous row's 62 multiply-adds and the
        // scorer spent two thirds of its time stalled on cache misses.
        rows.clear();
        rows.extend(
            features
                .keys
                .iter()
                .map(|k| self.index.get(k).copied().unwrap_or(u32::MAX)),
        );
        scaled.clear();
        for (&row, value) in rows.iter().zip(&features.values) {
            if let Some(r) = self.rows.get(row as usize) {
                scaled.push((row as usize, r.max() / 127.0 * value));
            }
        }
        let mut z = self.bias;
        for &(row, s) in scaled.iter() {
            for (zc, q) in z.iter_mut().zip(&self.rows[row].q) {
                *zc += f32::from(*q) * s;
            }
        }
        z
    }

    /// Calibrated probabilities from logits.
    pub(crate) fn probabilities(&self, logits: &[f32; CLASSES]) -> [f32; CLASSES] {
        softmax(logits, self.header.temperature)
    }

    /// The weight of feature row `row` for class `class`.
    pub(crate) fn weight(&self, row: u32, class: usize) -> f32 {
        self.rows
            .get(row as usize)
            .and_then(|r| r.q.get(class).map(|q| f32::from(*q) * r.max() / 127.0))
            .unwrap_or(0.0)
    }

    /// Serialises the model (weights quantised per row).
    pub fn to_bytes(&self) -> Vec<u8> {
        // In row order, which training chose (most frequent features first).
        let mut keys: Vec<(u64, u32)> = self.index.iter().map(|(k, r)| (*k, *r)).collect();
        keys.sort_unstable_by_key(|(_, r)| *r);
        let mut header = self.header.clone();
        header.features = keys.len();
        let json = serde_json::to_string(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(MAGIC.len() + json.len() + 1 + keys.len() * (12 + 62));
        out.extend_from_slice(MAGIC.as_bytes());
        out.extend_from_slice(json.as_bytes());
        out.push(b'\n');
        for (k, _) in &keys {
            out.extend_from_slice(&k.to_le_bytes());
        }
        let mut quantised = Vec::with_capacity(keys.len() * CLASSES);
        for (_, row) in &keys {
            let r = &self.rows[*row as usize];
            out.extend_from_slice(&r.max().to_le_bytes());
            quantised.extend(r.q.iter().map(|q| *q as u8));
        }
        out.extend_from_slice(&quantised);
        out
    }

    /// Reads a model written by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_bytes())
            .ok_or(ModelError::Magic)?;
        let nl = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(ModelError::Magic)?;
        let header: ModelHeader = serde_json::from_slice(&rest[..nl])?;
        if header.classes.len() != CLASSES
            || header
                .classes
                .iter()
                .zip(SUBTYPE_CODES)
                .any(|(a, b)| a != b)
            || header.bias.len() != CLASSES
        {
            return Err(ModelError::Classes);
        }
        let payload = &rest[nl + 1..];
        let n = header.features;
        let want = n * (8 + 4 + CLASSES);
        if payload.len() != want {
            return Err(ModelError::Payload {
                got: payload.len(),
                want,
            });
        }
        let (key_bytes, rest) = payload.split_at(n * 8);
        let (scale_bytes, weight_bytes) = rest.split_at(n * 4);
        let keys: Vec<u64> = key_bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let rows = weight_bytes
            .chunks_exact(CLASSES)
            .zip(scale_bytes.chunks_exact(4))
            .map(|(w, scale)| {
                let max = f32::from_le_bytes(scale.try_into().unwrap_or([0; 4]));
                let mut q = [0i8; CLASSES];
                for (qc, b) in q.iter_mut().zip(w) {
                    *qc = *b as i8;
                }
                Row {
                    q,
                    max_bf16: bf16(max),
                }
            })
            .collect();
        Ok(LinearModel::from_rows(header, &keys, rows))
    }
}

/// Softmax of `logits / temperature`, numerically stable.
pub(crate) fn softmax(logits: &[f32; CLASSES], temperature: f32) -> [f32; CLASSES] {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, x| m.max(*x));
    let mut p = [0.0f32; CLASSES];
    let mut sum = 0.0f32;
    for (pc, z) in p.iter_mut().zip(logits) {
        *pc = ((z - max) / t).exp();
        sum += *pc;
    }
    if sum > 0.0 && sum.is_finite() {
        for pc in &mut p {
            *pc /= sum;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n: usize) -> ModelHeader {
        ModelHeader {
            name: "test".into(),
            classes: SUBTYPE_CODES.iter().map(|s| (*s).to_owned()).collect(),
            features: n,
            feature_config: FeatureConfig::default(),
            bias: vec![0.5; CLASSES],
            temperature: 1.3,
            training_sha256: "x".into(),
            lexicon_sha256: "y".into(),
            examples: 3,
            training: serde_json::json!({"seed": 1}),
        }
    }

    #[test]
    fn a_model_survives_the_file_format() {
        let keys = [7u64, 3, 99];
        let mut weights = vec![0.0f32; 3 * CLASSES];
        for (i, w) in weights.iter_mut().enumerate() {
            *w = (i as f32 - 90.0) / 37.0;
        }
        let m = LinearModel::new(header(3), &keys, weights.clone());
        let back = LinearModel::from_bytes(&m.to_bytes()).expect("reads back");
        assert_eq!(back.header.name, "test");
        for (k, row) in keys.iter().zip(0u32..) {
            let r = back.index[k];
            for c in 0..CLASSES {
                let want = weights[row as usize * CLASSES + c];
                let got = back.weight(r, c);
                assert!(
                    (want - got).abs() <= 2.5 / 127.0 + 2.5 / 256.0,
                    "{want} vs {got}"
                );
            }
        }
        assert_eq!(
            back.to_bytes(),
            LinearModel::from_bytes(&back.to_bytes())
                .expect("again")
                .to_bytes()
        );
    }

    #[test]
    fn a_row_is_one_cache_line_and_bf16_rounds_to_nearest() {
        assert_eq!(std::mem::size_of::<Row>(), 64);
        for x in [0.0f32, 1.0, 0.123_456, 3.75, 1e-8, 250.0] {
            let back = f32::from_bits(u32::from(bf16(x)) << 16);
            assert!((back - x).abs() <= x * 2f32.powi(-8), "{x} -> {back}");
        }
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert!(matches!(
            LinearModel::from_bytes(b""),
            Err(ModelError::Magic)
        ));
        assert!(LinearModel::from_bytes(b"pingan-linear-model 1\n{}\n").is_err());
        let m = LinearModel::new(header(1), &[1], vec![0.0; CLASSES]);
        let mut bytes = m.to_bytes();
        bytes.pop();
        assert!(matches!(
            LinearModel::from_bytes(&bytes),
            Err(ModelError::Payload { .. })
        ));
    }

    #[test]
    fn softmax_sums_to_one_and_survives_extremes() {
        let mut z = [0.0f32; CLASSES];
        z[3] = 1e30;
        let p = softmax(&z, 1.0);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(p[3] > 0.99);
    }
}
