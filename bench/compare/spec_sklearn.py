"""The spec (sql/bench_spec.sql) in pandas + scikit-learn: a ColumnTransformer
of MinMaxScaler, StandardScaler and three small transformers for what
scikit-learn defines differently (its OrdinalEncoder orders categories by
value, not frequency; KBinsDiscretizer interpolates quantiles; there is no
FarmHash cross). fit_transform on the DataFrame, then written to Parquet.

Usage: python spec_sklearn.py INPUT.parquet OUTPUT.parquet [--save-model FILE]
"""

import pickle
import sys

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from spec_common import OUTPUTS, VOCAB_COLUMNS, cross_bucket_of_text, quantile_boundaries, vocabulary


class FrequencyVocabulary(BaseEstimator, TransformerMixin):
    """Index in the vocabulary ordered by count desc, value asc; NaN for NULL,
    the vocabulary's size for unseen values."""

    def fit(self, X, y=None):
        self.mappings_ = []
        for c in X.columns:
            counts = X[c].value_counts(dropna=True)
            vocab = vocabulary(list(counts.items()))
            self.mappings_.append({v: i for i, v in enumerate(vocab)})
        return self

    def transform(self, X):
        out = np.empty((len(X), X.shape[1]))
        for j, (c, mapping) in enumerate(zip(X.columns, self.mappings_)):
            col = X[c]
            ids = col.map(mapping).astype("float64")
            ids[col.notna() & ids.isna()] = len(mapping)
            out[:, j] = ids.to_numpy()
        return out


class HashedCross(BaseEstimator, TransformerMixin):
    """FarmHash Fingerprint64 of 'a_b' modulo the bucket count; NaN if either
    is NULL. Hashes each distinct pair once."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        a, b = X.columns
        pairs = X[a].astype("object") + "_" + X[b].astype("object")
        codes, uniques = pd.factorize(pairs, use_na_sentinel=True)
        buckets = np.array(
            [cross_bucket_of_text(u) for u in uniques] + [np.nan], dtype="float64"
        )
        # factorize codes NULL as -1: the last slot.
        return buckets[codes].reshape(-1, 1)


class ExactQuantileBucket(BaseEstimator, TransformerMixin):
    def __init__(self, n=10):
        self.n = n

    def fit(self, X, y=None):
        values = X.iloc[:, 0].dropna()
        counts = values.value_counts()
        self.boundaries_ = np.array(quantile_boundaries(list(counts.items()), self.n))
        return self

    def transform(self, X):
        x = X.iloc[:, 0].to_numpy(dtype="float64")
        return np.searchsorted(self.boundaries_, x, side="right").astype("float64").reshape(-1, 1)


def pipeline():
    return ColumnTransformer(
        [
            ("min_max", MinMaxScaler(), ["age", "hours_per_week"]),
            ("z_score", StandardScaler(), ["fnlwgt", "capital_gain", "education_num"]),
            ("vocabulary", FrequencyVocabulary(), VOCAB_COLUMNS),
            ("cross", HashedCross(), ["education", "occupation"]),
            ("age_bucket", ExactQuantileBucket(10), ["age"]),
        ]
    )


def main(src, out, model=None):
    df = pd.read_parquet(src)
    pipe = pipeline()
    features = pipe.fit_transform(df)
    result = pd.DataFrame(features, columns=OUTPUTS)
    for c in OUTPUTS[5:]:
        result[c] = result[c].astype("Int64")
    result.to_parquet(out, index=False)
    if model:
        with open(model, "wb") as f:
            pickle.dump(pipe, f)


if __name__ == "__main__":
    args = sys.argv[1:]
    model = None
    if "--save-model" in args:
        i = args.index("--save-model")
        model = args[i + 1]
        del args[i : i + 2]
    # Through the module, so that a saved pipeline's classes unpickle as
    # spec_sklearn.* (serving.py loads it).
    import spec_sklearn

    spec_sklearn.main(args[0], args[1], model)
