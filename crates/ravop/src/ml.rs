//! Classic-ML estimators (group F) in the style of scikit-learn: `fit` records the fit op and
//! returns a [`Model`], whose `predict` and `score` record ops using the fitted model.
//!
//! ```
//! use ravop::Graph;
//! use ravop::ml::{KMeans, LinearRegression};
//!
//! let graph = Graph::new("estimators");
//! let x = graph.t(ndarray::array![[0.0], [1.0], [2.0]].into_dyn());
//! let y = graph.t(ndarray::array![1.0, 3.0, 5.0].into_dyn());
//! let line = LinearRegression::fit(&x, &y);
//! line.predict(&x).persist("fitted");
//! line.model().persist("model"); // read it back with `FittedModel::from_value`
//! let clusters = KMeans::new(2).seed(7).fit(&x);
//! clusters.predict(&x).persist("clusters");
//! ```
//!
//! Nothing runs until the graph does (locally or on the grid); each estimator's params are the
//! catalogue op's, with scikit-learn's defaults.

use crate::graph::Op;
use ravproto::ops::{Criterion, KMeansParams, KnnParams, LogisticRegressionParams, SvmKernel, SvmParams, TreeParams};

/// A fitted model inside a graph: the fit op, and ops that use it.
#[derive(Clone, Debug)]
pub struct Model {
    op: Op,
}

impl Model {
    /// The fit op (its value is the [`crate::FittedModel`]).
    pub fn model(&self) -> &Op {
        &self.op
    }

    /// Predictions for the rows of `x` (class labels, numbers, or cluster indices).
    pub fn predict(&self, x: &Op) -> Op {
        self.op.predict(x)
    }

    /// scikit-learn's score on `(x, y)`: accuracy, R², or minus the k-means inertia.
    pub fn score(&self, x: &Op, y: &Op) -> Op {
        self.op.score(x, y)
    }
}

/// Ordinary least squares.
#[derive(Clone, Copy, Debug)]
pub struct LinearRegression;

impl LinearRegression {
    /// Fits `y ≈ x · coef + intercept`.
    pub fn fit(x: &Op, y: &Op) -> Model {
        Model { op: x.linear_regression(y) }
    }
}

/// Multinomial logistic regression with scikit-learn's default L2 penalty.
#[derive(Clone, Copy, Debug)]
pub struct LogisticRegression;

impl LogisticRegression {
    /// Fits class labels `y` from `x`.
    pub fn fit(x: &Op, y: &Op) -> Model {
        Model { op: x.logistic_regression(y, LogisticRegressionParams { random_state: 0 }) }
    }
}

/// Gaussian naive Bayes.
#[derive(Clone, Copy, Debug)]
pub struct GaussianNb;

impl GaussianNb {
    /// Fits class labels `y` from `x`.
    pub fn fit(x: &Op, y: &Op) -> Model {
        Model { op: x.naive_bayes(y) }
    }
}

/// k nearest neighbours.
#[derive(Clone, Copy, Debug)]
pub struct Knn {
    k: usize,
}

impl Knn {
    /// Consulting `k` neighbours.
    pub fn new(k: usize) -> Knn {
        Knn { k }
    }

    /// A classifier voting on the labels `y`.
    pub fn classifier(self, x: &Op, y: &Op) -> Model {
        Model { op: x.knn_classifier(y, KnnParams { k: self.k }) }
    }

    /// A regressor averaging the targets `y`.
    pub fn regressor(self, x: &Op, y: &Op) -> Model {
        Model { op: x.knn_regressor(y, KnnParams { k: self.k }) }
    }
}

/// k-means clustering (k-means++, ten runs, as scikit-learn).
#[derive(Clone, Debug)]
pub struct KMeans {
    params: KMeansParams,
}

impl KMeans {
    /// `n_clusters` clusters, seed 0.
    pub fn new(n_clusters: usize) -> KMeans {
        KMeans { params: KMeansParams { n_clusters, random_state: 0 } }
    }

    /// Seeds the initialisation (same seed, same centres, on any machine).
    pub fn seed(mut self, seed: u64) -> KMeans {
        self.params.random_state = seed;
        self
    }

    /// Clusters the rows of `x`.
    pub fn fit(self, x: &Op) -> Model {
        Model { op: x.kmeans(self.params) }
    }
}

/// A support vector machine (libsvm's C-SVC and epsilon-SVR with scikit-learn's defaults:
/// `C = 1`, `gamma = "scale"`, `epsilon = 0.1`); at most 5,000 training samples.
#[derive(Clone, Copy, Debug)]
pub struct Svm {
    kernel: SvmKernel,
}

impl Svm {
    /// An SVM with `kernel` (the original's default is linear).
    pub fn new(kernel: SvmKernel) -> Svm {
        Svm { kernel }
    }

    /// A classifier of the labels `y` (one machine per pair of classes).
    pub fn classifier(self, x: &Op, y: &Op) -> Model {
        Model { op: x.svm_svc(y, SvmParams { kernel: self.kernel }) }
    }

    /// A regressor of the targets `y`.
    pub fn regressor(self, x: &Op, y: &Op) -> Model {
        Model { op: x.svm_svr(y, SvmParams { kernel: self.kernel }) }
    }
}

/// A decision tree or a random forest (CART).
#[derive(Clone, Debug)]
pub struct Trees {
    params: TreeParams,
    forest: bool,
}

impl Trees {
    /// One tree.
    pub fn tree() -> Trees {
        Trees { params: TreeParams::default(), forest: false }
    }

    /// A forest of `n_estimators` trees on bootstrap samples.
    pub fn forest(n_estimators: usize) -> Trees {
        Trees { params: TreeParams { n_estimators, ..TreeParams::default() }, forest: true }
    }

    /// Limits the depth.
    pub fn max_depth(mut self, depth: usize) -> Trees {
        self.params.max_depth = Some(depth);
        self
    }

    /// The split criterion (default: gini for classifiers, squared error for regressors).
    pub fn criterion(mut self, criterion: Criterion) -> Trees {
        self.params.criterion = Some(criterion);
        self
    }

    /// Seeds the bootstrap samples and feature draws.
    pub fn seed(mut self, seed: u64) -> Trees {
        self.params.random_state = seed;
        self
    }

    /// A classifier of the labels `y`.
    pub fn classifier(self, x: &Op, y: &Op) -> Model {
        let op = if self.forest {
            x.random_forest_classifier(y, self.params)
        } else {
            x.decision_tree_classifier(y, self.params)
        };
        Model { op }
    }

    /// A regressor of the targets `y`.
    pub fn regressor(self, x: &Op, y: &Op) -> Model {
        let op = if self.forest {
            x.random_forest_regressor(y, self.params)
        } else {
            x.decision_tree_regressor(y, self.params)
        };
        Model { op }
    }
}
