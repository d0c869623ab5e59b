//! Fitted classic-ML models (group F): what a fit op returns and `predict`/`score` read.
//!
//! The original returned a pickled scikit-learn estimator, which anyone who unpickled it had to
//! trust with code execution (§9 of the reference). Here a fitted model is its parameters and
//! nothing else: a typed enum, carried in graphs and results as bytes ([`crate::blob`]: the
//! structure as JSON, the numbers as binary tensors). A requester who fetches a fit op's result
//! reads it with [`FittedModel::from_value`].

use crate::blob::{BlobError, bytes_value, decode_blob, encode_blob, value_bytes};
use crate::ops::SvmKernel;
use crate::tensor::{TensorData, Value};
use serde::{Deserialize, Serialize};

/// A fitted model's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum FittedModel {
    /// Ordinary least squares: `y = x · coef + intercept`.
    LinearRegression {
        /// One weight per feature (`f64`, shape `(features,)`).
        coef: TensorData,
        intercept: f64,
    },
    /// k nearest neighbours voting on a class (ties: the smallest label).
    KnnClassifier {
        /// Neighbours consulted.
        k: usize,
        /// The training samples (`f64`, `(samples, features)`).
        x: TensorData,
        /// Their labels (`f64`, `(samples,)`).
        y: TensorData,
    },
    /// k nearest neighbours averaging their targets.
    KnnRegressor {
        /// Neighbours consulted.
        k: usize,
        /// The training samples (`f64`, `(samples, features)`).
        x: TensorData,
        /// Their targets (`f64`, `(samples,)`).
        y: TensorData,
    },
    /// Gaussian naive Bayes.
    GaussianNb {
        /// The class labels, ascending.
        classes: Vec<f64>,
        /// Prior probability of each class (`f64`, `(classes,)`).
        priors: TensorData,
        /// Mean of each feature per class (`f64`, `(classes, features)`).
        theta: TensorData,
        /// Variance of each feature per class, smoothed (`f64`, `(classes, features)`).
        var: TensorData,
    },
    /// Logistic regression (multinomial, L2-penalised as scikit-learn's default `C = 1`):
    /// the class with the largest `x · coef + intercept`.
    LogisticRegression {
        /// The class labels, ascending.
        classes: Vec<f64>,
        /// Weights (`f64`, `(features, classes)`).
        coef: TensorData,
        /// Intercepts (`f64`, `(classes,)`).
        intercept: TensorData,
    },
    /// A decision tree voting on classes.
    DecisionTreeClassifier {
        /// The class labels, ascending (columns of the tree's values).
        classes: Vec<f64>,
        tree: Tree,
    },
    /// A decision tree predicting a number.
    DecisionTreeRegressor { tree: Tree },
    /// Trees on bootstrap samples, averaging their class probabilities.
    RandomForestClassifier {
        /// The class labels, ascending.
        classes: Vec<f64>,
        trees: Vec<Tree>,
    },
    /// Trees on bootstrap samples, averaging their predictions.
    RandomForestRegressor { trees: Vec<Tree> },
    /// Support vector classification (libsvm's C-SVC, `C = 1`): one binary machine per pair
    /// of classes, and the pairs vote (ties: the smallest label), as scikit-learn's `SVC`.
    SvmSvc {
        /// The class labels, ascending.
        classes: Vec<f64>,
        /// The kernel the machines were fitted with.
        kernel: SvmKernelModel,
        /// One machine per pair of classes `(a, b)`, `a < b`, in the order (0,1), (0,2), ...,
        /// (1,2), ...; a positive decision is a vote for `a`.
        machines: Vec<SvmMachine>,
    },
    /// Epsilon support vector regression (libsvm's epsilon-SVR, `C = 1`, `epsilon = 0.1`).
    SvmSvr {
        /// The kernel the machine was fitted with.
        kernel: SvmKernelModel,
        /// The machine; its decision is the prediction.
        machine: SvmMachine,
    },
    /// k-means clustering.
    Kmeans {
        /// The cluster centres (`f64`, `(clusters, features)`).
        centroids: TensorData,
        /// Sum of squared distances of the training samples to their centre.
        inertia: f64,
    },
}

/// A fitted decision tree as node arrays (node 0 is the root; scikit-learn's `tree_` layout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    /// The feature each node tests, `-1` at a leaf (`i64`, `(nodes,)`).
    pub feature: TensorData,
    /// Samples with `x[feature] <= threshold` go to the left child (`f64`, `(nodes,)`).
    pub threshold: TensorData,
    /// `[left, right]` children of each node, `-1` at a leaf (`i64`, `(nodes, 2)`).
    pub children: TensorData,
    /// What each node predicts: class probabilities, or the mean target (`f64`,
    /// `(nodes, outputs)`).
    pub value: TensorData,
}

/// A fitted SVM's kernel, with the values scikit-learn's defaults resolve to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmKernelModel {
    /// `linear`: `a · b`; `rbf`: `exp(-gamma |a - b|²)`; `poly`: `(gamma a · b + coef0)^degree`.
    pub kind: SvmKernel,
    /// `gamma = "scale"`: `1 / (features · var(X))` of the training set.
    pub gamma: f64,
    /// Degree of the polynomial kernel (3).
    pub degree: i32,
    /// Constant term of the polynomial kernel (0).
    pub coef0: f64,
}

/// One kernel machine: `decision(x) = sum_i coef_i K(support_i, x) - rho`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmMachine {
    /// The support vectors (`f64`, `(vectors, features)`).
    pub support: TensorData,
    /// Their dual coefficients (`f64`, `(vectors,)`).
    pub coef: TensorData,
    /// The offset.
    pub rho: f64,
}

impl SvmMachine {
    fn tensors_mut(&mut self) -> [&mut TensorData; 2] {
        [&mut self.support, &mut self.coef]
    }
}

impl Tree {
    fn tensors_mut(&mut self) -> [&mut TensorData; 4] {
        [&mut self.feature, &mut self.threshold, &mut self.children, &mut self.value]
    }
}

impl FittedModel {
    /// The model's name, as in its JSON form (`"kmeans"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FittedModel::LinearRegression { .. } => "linear_regression",
            FittedModel::KnnClassifier { .. } => "knn_classifier",
            FittedModel::KnnRegressor { .. } => "knn_regressor",
            FittedModel::GaussianNb { .. } => "gaussian_nb",
            FittedModel::LogisticRegression { .. } => "logistic_regression",
            FittedModel::DecisionTreeClassifier { .. } => "decision_tree_classifier",
            FittedModel::DecisionTreeRegressor { .. } => "decision_tree_regressor",
            FittedModel::RandomForestClassifier { .. } => "random_forest_classifier",
            FittedModel::RandomForestRegressor { .. } => "random_forest_regressor",
            FittedModel::SvmSvc { .. } => "svm_svc",
            FittedModel::SvmSvr { .. } => "svm_svr",
            FittedModel::Kmeans { .. } => "kmeans",
        }
    }

    fn tensors_mut(&mut self) -> Vec<&mut TensorData> {
        match self {
            FittedModel::LinearRegression { coef, .. } => vec![coef],
            FittedModel::KnnClassifier { x, y, .. } | FittedModel::KnnRegressor { x, y, .. } => vec![x, y],
            FittedModel::GaussianNb { priors, theta, var, .. } => vec![priors, theta, var],
            FittedModel::LogisticRegression { coef, intercept, .. } => vec![coef, intercept],
            FittedModel::DecisionTreeClassifier { tree, .. } | FittedModel::DecisionTreeRegressor { tree } => {
                tree.tensors_mut().into_iter().collect()
            }
            FittedModel::RandomForestClassifier { trees, .. } | FittedModel::RandomForestRegressor { trees } => {
                trees.iter_mut().flat_map(Tree::tensors_mut).collect()
            }
            FittedModel::SvmSvc { machines, .. } => machines.iter_mut().flat_map(SvmMachine::tensors_mut).collect(),
            FittedModel::SvmSvr { machine, .. } => machine.tensors_mut().into_iter().collect(),
            FittedModel::Kmeans { centroids, .. } => vec![centroids],
        }
    }

    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        encode_blob(self, FittedModel::tensors_mut)
    }

    /// Reads [`FittedModel::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<FittedModel, BlobError> {
        decode_blob(bytes, FittedModel::tensors_mut)
    }

    /// The model as a value (what a fit op returns): a `u8` vector of [`FittedModel::encode`].
    pub fn to_value(&self) -> Value {
        bytes_value(self.encode())
    }

    /// Reads a fit op's result.
    pub fn from_value(value: &Value) -> Result<FittedModel, BlobError> {
        FittedModel::decode(value_bytes(value)?)
    }
}
