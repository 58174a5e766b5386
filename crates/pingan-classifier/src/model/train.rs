//! Training: multinomial logistic regression over the extracted features, by AdaGrad with L2,
//! deterministic for a seed (a seeded shuffle, one thread, no hash-map iteration order).
//!
//! `fit` learns weights on a set of examples; `cross_validate` gives every example a prediction
//! from a model that never saw it (k folds); the softmax temperature is fitted on those
//! out-of-fold logits (minimum negative log-likelihood on a grid), so the confidence the final
//! model reports is calibrated on text it did not train on.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::features::{FeatureConfig, Features};
use super::linear::{CLASSES, LinearModel, ModelHeader, softmax};
use crate::text::SUBTYPE_CODES;

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seed of the example order.
    pub seed: u64,
    /// Passes over the data.
    pub epochs: usize,
    /// AdaGrad step size.
    pub learning_rate: f32,
    /// L2 penalty per weight.
    pub l2: f32,
    /// A feature must occur in at least this many training texts.
    pub min_count: usize,
    /// Extractor settings.
    pub features: FeatureConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 20_261_206,
            epochs: 25,
            learning_rate: 0.3,
            l2: 0.0,
            min_count: 3,
            features: FeatureConfig::default(),
        }
    }
}

/// One training example: its features and its label.
#[derive(Debug, Clone)]
pub(crate) struct Example {
    pub(crate) keys: Vec<u64>,
    pub(crate) values: Vec<f32>,
    pub(crate) label: usize,
}

impl Example {
    pub(crate) fn new(features: Features, label: usize) -> Self {
        Example {
            keys: features.keys,
            values: features.values,
            label,
        }
    }
}

/// Learned weights before they become a [`LinearModel`].
#[derive(Debug, Clone)]
pub(crate) struct Fit {
    pub(crate) keys: Vec<u64>,
    pub(crate) weights: Vec<f32>,
    pub(crate) bias: [f32; CLASSES],
}

impl Fit {
    fn index(&self) -> super::linear::KeyMap {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u32))
            .collect()
    }

    /// Logits of one example.
    fn logits(&self, index: &super::linear::KeyMap, e: &Example) -> [f32; CLASSES] {
        let mut z = self.bias;
        for (k, v) in e.keys.iter().zip(&e.values) {
            if let Some(&row) = index.get(k) {
                let w = &self.weights[row as usize * CLASSES..(row as usize + 1) * CLASSES];
                for (zc, wc) in z.iter_mut().zip(w) {
                    *zc += wc * v;
                }
            }
        }
        z
    }

    /// The model with header fields filled from `meta`.
    pub(crate) fn into_model(self, meta: ModelHeader) -> LinearModel {
        let mut header = meta;
        header.features = self.keys.len();
        header.bias = self.bias.to_vec();
        LinearModel::new(header, &self.keys, self.weights)
    }
}

/// Fits weights on `examples[i]` for every `i` in `subset`.
pub(crate) fn fit(examples: &[Example], subset: &[usize], config: &TrainConfig) -> Fit {
    // Vocabulary: keys seen in at least `min_count` training texts, in key order.
    let mut seen: Vec<u64> = Vec::new();
    for &i in subset {
        let mut keys = examples[i].keys.clone();
        keys.sort_unstable();
        keys.dedup();
        seen.extend(keys);
    }
    seen.sort_unstable();
    let mut counted: Vec<(usize, u64)> = Vec::new();
    let mut run = 0usize;
    for (i, k) in seen.iter().enumerate() {
        run += 1;
        if seen.get(i + 1) != Some(k) {
            if run >= config.min_count.max(1) {
                counted.push((run, *k));
            }
            run = 0;
        }
    }
    // Rows in order of how many texts have the feature: the few hundred features most texts
    // share sit together and stay in cache while scoring.
    counted.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let keys: Vec<u64> = counted.into_iter().map(|(_, k)| k).collect();
    let index: super::linear::KeyMap = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i as u32))
        .collect();
    // Each example as (row, value) pairs once, so epochs do no lookups.
    let rows: Vec<Vec<(u32, f32)>> = subset
        .iter()
        .map(|&i| {
            let e = &examples[i];
            e.keys
                .iter()
                .zip(&e.values)
                .filter_map(|(k, v)| index.get(k).map(|r| (*r, *v)))
                .collect()
        })
        .collect();
    let labels: Vec<usize> = subset.iter().map(|&i| examples[i].label).collect();

    let n = keys.len();
    let mut w = vec![0.0f32; n * CLASSES];
    let mut g2 = vec![1e-6f32; n * CLASSES];
    let mut b = [0.0f32; CLASSES];
    let mut gb2 = [1e-6f32; CLASSES];
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let lr = config.learning_rate;
    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        for &j in &order {
            let x = &rows[j];
            let mut z = b;
            for &(row, v) in x {
                let wr = &w[row as usize * CLASSES..(row as usize + 1) * CLASSES];
                for (zc, wc) in z.iter_mut().zip(wr) {
                    *zc += wc * v;
                }
            }
            let mut g = softmax(&z, 1.0);
            g[labels[j]] -= 1.0;
            for ((bc, gbc), gc) in b.iter_mut().zip(&mut gb2).zip(&g) {
                *gbc += gc * gc;
                *bc -= lr * gc / gbc.sqrt();
            }
            for &(row, v) in x {
                let span = row as usize * CLASSES..(row as usize + 1) * CLASSES;
                for ((wi, gi), gc) in w[span.clone()].iter_mut().zip(&mut g2[span]).zip(&g) {
                    let grad = gc * v + config.l2 * *wi;
                    *gi += grad * grad;
                    *wi -= lr * grad / gi.sqrt();
                }
            }
        }
    }
    Fit {
        keys,
        weights: w,
        bias: b,
    }
}

/// Fold of each example: a seeded shuffle dealt round-robin, so every fold has about the same
/// share of every writer and label order.
pub(crate) fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed));
    let mut fold = vec![0; n];
    for (pos, &i) in order.iter().enumerate() {
        fold[i] = pos % k.max(1);
    }
    fold
}

/// Out-of-fold logits: example `i` is scored by the model fitted on every fold but `group[i]`.
pub(crate) fn out_of_fold(
    examples: &[Example],
    group: &[usize],
    config: &TrainConfig,
    mut progress: impl FnMut(usize, usize),
) -> Vec<[f32; CLASSES]> {
    let groups = group.iter().copied().max().map_or(0, |m| m + 1);
    let mut out = vec![[0.0f32; CLASSES]; examples.len()];
    for g in 0..groups {
        progress(g + 1, groups);
        let train: Vec<usize> = (0..examples.len()).filter(|&i| group[i] != g).collect();
        if train.is_empty() {
            continue;
        }
        let fit = fit(examples, &train, config);
        let index = fit.index();
        for i in (0..examples.len()).filter(|&i| group[i] == g) {
            out[i] = fit.logits(&index, &examples[i]);
        }
    }
    out
}

/// The temperature minimising the negative log-likelihood of `labels` under `logits`.
pub(crate) fn fit_temperature(logits: &[[f32; CLASSES]], labels: &[usize]) -> f32 {
    let nll = |t: f32| -> f64 {
        logits
            .iter()
            .zip(labels)
            .map(|(z, &y)| -f64::from(softmax(z, t)[y].max(1e-12)).ln())
            .sum()
    };
    let mut best = (1.0f32, f64::INFINITY);
    let mut t = 0.25f32;
    while t <= 4.0 {
        let v = nll(t);
        if v < best.1 {
            best = (t, v);
        }
        t += 0.05;
    }
    best.0
}

/// Index and probability of the best and second-best class; ties go to the earlier class.
pub(crate) fn top_two(p: &[f32; CLASSES]) -> ((usize, f32), (usize, f32)) {
    let mut first = (0usize, f32::NEG_INFINITY);
    let mut second = (0usize, f32::NEG_INFINITY);
    for (i, &v) in p.iter().enumerate() {
        if v > first.1 {
            second = first;
            first = (i, v);
        } else if v > second.1 {
            second = (i, v);
        }
    }
    (first, second)
}

/// Names of the classes, for the model header.
pub(crate) fn class_names() -> Vec<String> {
    SUBTYPE_CODES.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(keys: &[u64], label: usize) -> Example {
        Example {
            keys: keys.to_vec(),
            values: vec![1.0; keys.len()],
            label,
        }
    }

    #[test]
    fn a_separable_toy_set_is_learned_and_training_is_deterministic() {
        let data: Vec<Example> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    ex(&[1, 100 + i % 5], 3)
                } else {
                    ex(&[2, 100 + i % 5], 7)
                }
            })
            .collect();
        let all: Vec<usize> = (0..data.len()).collect();
        let config = TrainConfig::default();
        let a = fit(&data, &all, &config);
        let b = fit(&data, &all, &config);
        assert_eq!(a.weights, b.weights);
        let index = a.index();
        let z = a.logits(&index, &ex(&[1], 0));
        assert_eq!(top_two(&softmax(&z, 1.0)).0.0, 3);
        let z = a.logits(&index, &ex(&[2, 999], 0));
        assert_eq!(top_two(&softmax(&z, 1.0)).0.0, 7);
    }

    #[test]
    fn folds_are_balanced_and_out_of_fold_never_sees_the_example() {
        let f = folds(10, 5, 1);
        for k in 0..5 {
            assert_eq!(f.iter().filter(|&&x| x == k).count(), 2);
        }
        // A key that only one example has is below min_count in every fit, so its own fold
        // cannot know it.
        let mut data: Vec<Example> = (0..20).map(|i| ex(&[1 + (i % 2) as u64], i % 2)).collect();
        data.push(ex(&[777], 5));
        let group: Vec<usize> = (0..data.len()).map(|i| i % 3).collect();
        let oof = out_of_fold(&data, &group, &TrainConfig::default(), |_, _| {});
        assert_ne!(top_two(&softmax(&oof[20], 1.0)).0.0, 5);
    }

    #[test]
    fn temperature_is_fitted_within_its_grid() {
        let mut z = [0.0f32; CLASSES];
        z[0] = 10.0;
        // Confidently right half the time: the temperature must soften.
        let logits = vec![z; 10];
        let labels: Vec<usize> = (0..10).map(|i| if i % 2 == 0 { 0 } else { 1 }).collect();
        let t = fit_temperature(&logits, &labels);
        assert!(t > 1.0 && t <= 4.0, "{t}");
    }
}
