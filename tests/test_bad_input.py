"""Every kind of bad input gives one clear error that names the file and the problem."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from qapflow.common.errors import DataFormatError
from qapflow.data.h5file import write_jets
from qapflow.data.schema import JetArrays
from qapflow.data.sources import load_jets
from tests.formats import write_arff, write_parquet, write_zenodo_h5


def expect_error(path, pattern):
    with pytest.raises(DataFormatError, match=pattern) as info:
        load_jets(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.h5", "file not found")


def test_truncated_file(tmp_path, small_jets):
    path = tmp_path / "jets.h5"
    write_jets(path, small_jets)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_error(path, "truncated or corrupt")


def test_wrong_schema(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 4))
    expect_error(path, "no 'features' dataset")


def test_wrong_feature_count(tmp_path, small_jets):
    path = tmp_path / "jets.h5"
    with h5py.File(path, "w") as f:
        f["features"] = small_jets.features[:, :15]
        f["labels"] = small_jets.labels
    expect_error(path, r"'features' has shape \[100, 15\]; expected \[N, 16\]")


def test_wrong_feature_count_in_arff(tmp_path, small_jets):
    path = tmp_path / "jets.arff"
    write_arff(path, small_jets)
    text = path.read_text().replace("@ATTRIBUTE j_multiplicity NUMERIC\n", "")
    text = "\n".join(
        line.rsplit(",", 2)[0] + "," + line.rsplit(",", 1)[1] if line and line[0] not in "@" else line
        for line in text.splitlines()
    )
    path.write_text(text + "\n")
    expect_error(path, r"missing feature columns \['j_multiplicity'\]")


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_values(tmp_path, small_jets, value, word):
    small_jets.features[3, 14] = value
    path = tmp_path / "jets.pq"
    write_parquet(path, small_jets)
    expect_error(path, r"1 non-finite feature values \(NaN/inf\), first at jet 3, feature j_mass_mmdt")


def test_unknown_class_label(tmp_path, small_jets):
    path = tmp_path / "jets.pq"
    write_parquet(path, small_jets)
    import pyarrow.parquet as pq

    table = pq.read_table(path).to_pydict()
    table["class"][5] = "higgs"
    import pyarrow as pa

    pq.write_table(pa.table(table), path)
    expect_error(path, "unknown class label 'higgs' at row 5")


def test_label_columns_not_one_hot_in_zenodo_file(tmp_path, small_jets):
    small_jets.labels[7] = 0  # a jet of no class (j_undef in the real files)
    path = tmp_path / "z.h5"
    write_zenodo_h5(path, small_jets)
    expect_error(path, r"not one-hot .*\(first bad jet: 7\)")


def test_unknown_extension(tmp_path):
    path = tmp_path / "jets.csv"
    path.write_text("a,b\n")
    expect_error(path, "unknown data format")


def test_writer_refuses_bad_arrays(tmp_path):
    bad = JetArrays(np.zeros((4, 16), np.float32), np.zeros((4, 5), np.uint8))
    with pytest.raises(DataFormatError, match="not one-hot"):
        write_jets(tmp_path / "x.h5", bad)
    assert not (tmp_path / "x.h5").exists()


def test_cli_prints_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "missing.h5"
    result = subprocess.run([sys.executable, "-m", "qapflow.cli", "data", "info", str(missing)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"qapflow: error: {missing}: file not found"
