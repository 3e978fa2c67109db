"""What the peer implementations share: the spec's output columns and the
parts of its semantics that the peers' libraries do not provide as skewless
defines them (see sql/bench_spec.sql and `skewless functions`).

- Vocabulary: distinct non-NULL values by count descending, then value
  ascending (byte order); index in that list; NULL stays NULL (an unseen
  value would get the vocabulary's size, one OOV bucket).
- Hashed cross: FarmHash Fingerprint64 of `education || '_' || occupation`
  modulo 10,000 (BigQuery ML's ML.FEATURE_CROSS / HASH_BUCKETIZE); NULL if
  either is NULL. Computed once per distinct pair.
- Quantile buckets: with v_0 <= ... <= v_(N-1) the sorted values, boundaries
  v_floor(i*N/10) for i = 1..9, duplicates dropped; the bucket is the number
  of boundaries <= x.
"""

import farmhash

OUTPUTS = [
    "age_scaled",
    "hours_scaled",
    "fnlwgt_z",
    "capital_gain_z",
    "education_num_z",
    "occupation_id",
    "education_id",
    "workclass_id",
    "native_country_id",
    "education_x_occupation",
    "age_bucket",
]
VOCAB_COLUMNS = ["occupation", "education", "workclass", "native_country"]
CROSS_BUCKETS = 10_000
QUANTILE_BUCKETS = 10


def vocabulary(counts):
    """[(value, count)] of non-NULL values -> values by count desc, value asc
    (UTF-8 byte order)."""
    return [v for v, _ in sorted(counts, key=lambda vc: (-vc[1], vc[0].encode()))]


def cross_bucket(education, occupation):
    return cross_bucket_of_text(f"{education}_{occupation}")


def cross_bucket_of_text(text):
    return farmhash.fingerprint64(text) % CROSS_BUCKETS


def quantile_boundaries(value_counts, n=QUANTILE_BUCKETS):
    """[(value, count)] of non-NULL values -> the spec's boundaries."""
    value_counts = sorted(value_counts)
    total = sum(c for _, c in value_counts)
    boundaries = []
    for i in range(1, n):
        rank = i * total // n
        seen = 0
        for v, c in value_counts:
            seen += c
            if seen > rank:
                if not boundaries or boundaries[-1] != v:
                    boundaries.append(v)
                break
    return boundaries
