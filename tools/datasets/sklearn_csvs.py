#!/usr/bin/python3
"""Writes the bundled classification datasets (mosaic-spark/src/main/resources/datasets/) from
the CSV files that Debian's python3-sklearn package ships (sklearn/datasets/data/), adding a
header row of feature names and a final integer `class` column.

    cd /tmp && apt-get download python3-sklearn && dpkg-deb -x python3-sklearn_*_all.deb skl
    /usr/bin/python3 tools/datasets/sklearn_csvs.py \
        /tmp/skl/usr/lib/python3/dist-packages/sklearn/datasets/data \
        mosaic-spark/src/main/resources/datasets
"""
import csv
import os
import sys

BREAST = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
          "concave_points", "symmetry", "fractal_dimension"]
DATASETS = {
    "iris": ("iris.csv", ["sepal_length_cm", "sepal_width_cm", "petal_length_cm",
                          "petal_width_cm"]),
    "wine": ("wine_data.csv", ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium",
                               "total_phenols", "flavanoids", "nonflavanoid_phenols",
                               "proanthocyanins", "color_intensity", "hue",
                               "od280_od315_of_diluted_wines", "proline"]),
    "breast_cancer": ("breast_cancer.csv", [f"{k}_{f}" for k in ("mean", "se", "worst")
                                            for f in BREAST]),
}


def main(src, out):
    os.makedirs(out, exist_ok=True)
    for name, (file, features) in DATASETS.items():
        with open(os.path.join(src, file)) as f:
            rows = list(csv.reader(f))
        n, d = int(rows[0][0]), int(rows[0][1])
        body = rows[1:]
        assert len(body) == n and d == len(features), (name, n, d, len(body))
        with open(os.path.join(out, name + ".csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(features + ["class"])
            for r in body:
                assert len(r) == d + 1
                w.writerow(r[:d] + [str(int(float(r[d])))])
        print(f"{name}: {n} rows, {d} features, classes {rows[0][2:]}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
