#!/usr/bin/env python3
"""Reference scores for the classic-ML ops (group F), computed with scikit-learn.

Run: python3 -m venv v && v/bin/pip install scikit-learn==1.9.1 numpy==2.4.6
     v/bin/python scripts/gen_classic_reference.py          (write the fixture)
     v/bin/python scripts/gen_classic_reference.py --check  (compare with the committed one)
Writes crates/ravexec/tests/it/fixtures/classic_reference.json: generated datasets (train and
test splits) and, for each estimator Raven implements, scikit-learn's score on the test split
(accuracy for classifiers, R² for regressors, inertia for k-means; estimators with their
default parameters, as the ops have) and, where the model is
deterministic, its parameters. The Rust test fits the same data with Raven's ops and checks
its scores are within a small margin of these.
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from fixturecheck import close

OUT = os.path.join(
    os.path.dirname(__file__), "..", "crates", "ravexec", "tests", "it", "fixtures", "classic_reference.json"
)
rng = np.random.default_rng(20261124)


def arr(a):
    a = np.asarray(a, np.float64)
    return {"shape": list(a.shape), "data": [float(x) for x in a.reshape(-1)]}


def blobs(n, centres, spread):
    centres = np.asarray(centres, np.float64)
    labels = rng.integers(0, len(centres), n)
    x = centres[labels] + rng.normal(0.0, spread, (n, centres.shape[1]))
    return x, labels.astype(np.float64)


# Three overlapping classes in 4 dimensions: accuracy is high but not perfect.
x, y = blobs(210, [[0, 0, 0, 0], [2, 2, 0, 1], [0, 2, 2, -1]], 1.0)
classification = {"x_train": x[:150], "y_train": y[:150], "x_test": x[150:], "y_test": y[150:]}

# A noisy linear target in 5 dimensions.
x = rng.normal(0.0, 1.0, (160, 5))
y = x @ np.array([1.5, -2.0, 0.0, 0.7, 3.1]) + 0.4 + rng.normal(0.0, 0.5, 160)
regression = {"x_train": x[:120], "y_train": y[:120], "x_test": x[120:], "y_test": y[120:]}

# Four separated clusters in 2 dimensions.
clusters, _ = blobs(200, [[0, 0], [6, 0], [0, 6], [6, 6]], 0.8)

results = {}
knn = KNeighborsClassifier(n_neighbors=5).fit(classification["x_train"], classification["y_train"])
results["knn_classifier"] = {"k": 5, "accuracy": knn.score(classification["x_test"], classification["y_test"])}
nb = GaussianNB().fit(classification["x_train"], classification["y_train"])
results["naive_bayes"] = {
    "accuracy": nb.score(classification["x_test"], classification["y_test"]),
    "theta": arr(nb.theta_),
    "var": arr(nb.var_),
}
lr = LinearRegression().fit(regression["x_train"], regression["y_train"])
results["linear_regression"] = {
    "r2": lr.score(regression["x_test"], regression["y_test"]),
    "coef": arr(lr.coef_),
    "intercept": float(lr.intercept_),
}
knr = KNeighborsRegressor(n_neighbors=4).fit(regression["x_train"], regression["y_train"])
results["knn_regressor"] = {"k": 4, "r2": knr.score(regression["x_test"], regression["y_test"])}
c_train, c_test = (classification["x_train"], classification["y_train"]), (classification["x_test"], classification["y_test"])
r_train, r_test = (regression["x_train"], regression["y_train"]), (regression["x_test"], regression["y_test"])
results["logistic_regression"] = {"accuracy": LogisticRegression().fit(*c_train).score(*c_test)}
results["decision_tree_classifier"] = {"accuracy": DecisionTreeClassifier(random_state=0).fit(*c_train).score(*c_test)}
results["random_forest_classifier"] = {
    "accuracy": RandomForestClassifier(n_estimators=100, random_state=0).fit(*c_train).score(*c_test)
}
results["decision_tree_regressor"] = {"r2": DecisionTreeRegressor(random_state=0).fit(*r_train).score(*r_test)}
results["random_forest_regressor"] = {
    "r2": RandomForestRegressor(n_estimators=100, random_state=0).fit(*r_train).score(*r_test)
}
# libsvm with scikit-learn's defaults (C = 1, gamma = "scale", epsilon = 0.1, tol = 1e-3); the
# pairwise (ovo) decisions and the SVR predictions let the test compare the solutions too.
results["svm_svc"], results["svm_svr"] = {}, {}
for kernel in ["linear", "rbf", "poly"]:
    svc = SVC(kernel=kernel, decision_function_shape="ovo").fit(*c_train)
    results["svm_svc"][kernel] = {
        "accuracy": svc.score(*c_test),
        "n_support": int(svc.support_.size),
        "decision": arr(svc.decision_function(c_test[0])),
    }
    svr = SVR(kernel=kernel).fit(*r_train)
    results["svm_svr"][kernel] = {
        "r2": svr.score(*r_test),
        "n_support": int(svr.support_.size),
        "prediction": arr(svr.predict(r_test[0])),
    }
km = KMeans(n_clusters=4, n_init=10, random_state=0).fit(clusters)
results["kmeans"] = {"n_clusters": 4, "inertia": float(km.inertia_)}

fixture = {
    "generator": f"scripts/gen_classic_reference.py, scikit-learn {sklearn.__version__}, numpy {np.__version__}",
    "classification": {k: arr(v) for k, v in classification.items()},
    "regression": {k: arr(v) for k, v in regression.items()},
    "clusters": arr(clusters),
    "sklearn": results,
}
text = json.dumps(fixture, indent=1, sort_keys=True) + "\n"
if "--check" in sys.argv:
    with open(OUT) as f:
        if not close(json.load(f), json.loads(text)):
            sys.exit("classic_reference.json differs from what the script writes; regenerate it")
    print("classic_reference.json matches the script")
else:
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}: {json.dumps(results['knn_classifier'])} ...")
