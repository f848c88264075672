"""Write the bad-input corpus: small EGMS-like CSVs that are good except for a few rows.

Run ``python tests/data/bad/make_corpus.py`` to (re)write the files beside this script;
the tests check that the committed files are exactly what this script writes. Every case
and its expected outcome is listed in :data:`CASES` (tests/test_bad_corpus.py asserts them).

The scene: 120 MPs spread over a 26 km square of EPSG:3035 (Ireland, like ``synth``),
8 epochs from 2019-01-03 every 12 days, values in mm with 2 decimals.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
N, EPOCHS = 120, 8
WEST, SOUTH, SIZE = 3_180_000.0, 3_444_000.0, 26_000.0
DATES = [str(np.datetime64("2019-01-03") + np.timedelta64(12 * i, "D")).replace("-", "") for i in range(EPOCHS)]
L2 = ["pid", "mp_type", "latitude", "longitude", "easting", "northing", "height", "rmse", "mean_velocity"]
L3 = ["pid", "easting", "northing", "height", "rmse", "mean_velocity"]

#: file -> (expected outcome, what it holds). Outcomes: "ok" (same extent and dates as
#: good.csv, no warning), "warn" (same extent and dates, one warning), "refuse" (exit 2).
CASES = {
    "good.csv": ("ok", "the reference scene"),
    "zero_coordinate.csv": ("warn", "one row at easting,northing = 0,0"),
    "shifted_3000km.csv": ("warn", "one row shifted by 3,000 km"),
    "nan_inf_coordinates.csv": ("warn", "rows with nan, inf and empty coordinates"),
    "mixed_units.csv": ("warn", "three rows with coordinates in mm instead of m"),
    "latlon_swapped_rows.csv": ("warn", "latitude/longitude only; two rows with the two swapped"),
    "latlon_swapped_all.csv": ("refuse", "latitude/longitude columns swapped in every row (latitude > 90)"),
    "date_99991231.csv": ("refuse", "a date column 99991231 (beyond datetime64[ns])"),
    "date_18000101.csv": ("refuse", "a date column 18000101 (before Sentinel-1)"),
    "date_future.csv": ("refuse", "a date column 22000101 (after today)"),
    "header_repeated.csv": ("refuse", "two CSVs concatenated: the header again mid-file"),
    "crlf.csv": ("ok", "CRLF line ends"),
    "bom.csv": ("ok", "a UTF-8 byte order mark"),
    "latin1_pids.csv": ("ok", "pids in Latin-1 (not UTF-8)"),
    "semicolon.csv": ("ok", "; separated (EGMStoolkit)"),
    "semicolon_decimal_comma.csv": ("ok", "; separated with decimal commas (European spreadsheets)"),
    "tab_decimal_comma.csv": ("ok", "tab separated with decimal commas"),
    "l3_missing_date.csv": ("warn", "an L3 file whose middle epoch is empty in every row"),
    "repeated_pid.zip": ("refuse", "a zip whose rows all share one pid"),
    "two_products.zip": ("refuse", "a zip holding an L2b and an L3 CSV"),
}


def scene(seed: int = 16):
    rng = np.random.default_rng(seed)
    east = np.round(WEST + rng.uniform(0, SIZE, N), 1)
    north = np.round(SOUTH + rng.uniform(0, SIZE, N), 1)
    # The extent is set by four corner MPs, so "the scene's own extent" is exact.
    east[:4] = [WEST, WEST + SIZE, WEST, WEST + SIZE]
    north[:4] = [SOUTH, SOUTH, SOUTH + SIZE, SOUTH + SIZE]
    steps = rng.normal(-0.4, 1.5, (N, EPOCHS))
    steps[:, 0] = 0
    values = np.round(np.cumsum(steps, axis=1), 2)
    return east, north, values


def lonlat(east, north):
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True).transform(east, north)
    return np.round(lon, 7), np.round(lat, 7)


def fmt(v) -> str:
    return repr(float(v)) if not isinstance(v, str) else v


def table(columns, east, north, values, pids=None, dates=DATES) -> list[list[str]]:
    lon, lat = lonlat(east, north)
    pids = pids if pids is not None else [f"IE{i:05d}" for i in range(len(east))]
    cols = {
        "pid": pids,
        "mp_type": ["PS"] * len(east),
        "latitude": lat,
        "longitude": lon,
        "easting": east,
        "northing": north,
        "height": np.full(len(east), 55.5),
        "rmse": np.full(len(east), 1.2),
        "mean_velocity": np.round(values[:, -1] / 0.25, 2),
    }
    rows = [list(columns) + list(dates)]
    for i in range(len(east)):
        rows.append([fmt(cols[c][i]) for c in columns] + [fmt(v) for v in values[i]])
    return rows


def text(rows, sep=",", end="\n", decimal=".") -> str:
    def cell(c):
        return c.replace(".", decimal) if decimal != "." and _numeric(c) else c

    return "".join(sep.join(cell(c) for c in row) + end for row in rows)


def _numeric(c: str) -> bool:
    try:
        float(c)
        return True
    except ValueError:
        return False


def corpus() -> dict[str, bytes]:
    """{file name: bytes} of every case."""
    east, north, values = scene()
    good = table(L2, east, north, values)
    out = {"good.csv": text(good).encode()}

    def edited(rows, row, **cols):
        rows = [list(r) for r in rows]
        for name, value in cols.items():
            rows[row][rows[0].index(name)] = value
        return rows

    out["zero_coordinate.csv"] = text(edited(good, 50, easting="0", northing="0")).encode()
    out["shifted_3000km.csv"] = text(edited(good, 60, easting=fmt(east[59] + 3e6))).encode()
    rows = edited(good, 10, easting="nan")
    rows = edited(rows, 11, northing="inf")
    rows = edited(rows, 12, easting="")
    out["nan_inf_coordinates.csv"] = text(rows).encode()
    rows = good
    for i in (20, 21, 22):
        rows = edited(rows, i, easting=fmt(east[i - 1] * 1000), northing=fmt(north[i - 1] * 1000))
    out["mixed_units.csv"] = text(rows).encode()
    geo = ["pid", "latitude", "longitude", "height"]
    rows = table(geo, east, north, values)
    for i in (30, 31):
        la, lo = rows[i][1], rows[i][2]
        rows[i][1], rows[i][2] = lo, la
    out["latlon_swapped_rows.csv"] = text(rows).encode()
    # A scene at 120 E, 30 N (not EGMS, but degrees all the same) with the columns swapped.
    rng = np.random.default_rng(1)
    rows = [geo + DATES] + [
        [f"CN{i:05d}", fmt(round(120 + rng.uniform(0, 0.2), 6)), fmt(round(30 + rng.uniform(0, 0.2), 6)), "10.0"]
        + [fmt(v) for v in values[i]]
        for i in range(N)
    ]
    out["latlon_swapped_all.csv"] = text(rows).encode()
    for name, date, at in (
        ("date_99991231.csv", "99991231", -1),
        ("date_18000101.csv", "18000101", 0),
        ("date_future.csv", "22000101", -1),
    ):
        dates = list(DATES)
        dates[at] = date
        out[name] = text(table(L2, east, north, values, dates=dates)).encode()
    half = N // 2
    out["header_repeated.csv"] = (text(good[: half + 1]) + text([good[0]] + good[half + 1 :])).encode()
    out["crlf.csv"] = text(good, end="\r\n").encode()
    out["bom.csv"] = b"\xef\xbb\xbf" + text(good).encode()
    pids = [f"Bégles{i:05d}" for i in range(N)]
    out["latin1_pids.csv"] = text(table(L2, east, north, values, pids=pids)).encode("latin-1")
    out["semicolon.csv"] = text(good, sep=";").encode()
    out["semicolon_decimal_comma.csv"] = text(good, sep=";", decimal=",").encode()
    out["tab_decimal_comma.csv"] = text(good, sep="\t", decimal=",").encode()
    l3 = table(L3, east, north, values)
    middle = len(L3) + EPOCHS // 2
    for row in l3[1:]:
        row[middle] = ""
    out["l3_missing_date.csv"] = text(l3).encode()
    one_pid = table(
        L2, np.resize(east, 3000), np.resize(north, 3000), np.resize(values, (3000, EPOCHS)), pids=["IE00001"] * 3000
    )
    out["repeated_pid.zip"] = _zip({"EGMS_points.csv": text(one_pid).encode()})
    out["two_products.zip"] = _zip(
        {
            "EGMS_L2b_001_0001_IW1_VV_2019_2023_1.csv": text(good).encode(),
            "EGMS_L3_E31N34_100km_U_2019_2023_1.csv": text(l3).encode(),
        }
    )
    return out


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))  # fixed: same bytes every run
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def main(folder: Path = HERE) -> None:
    for name, data in corpus().items():
        (folder / name).write_bytes(data)
    print(f"wrote {len(CASES)} files to {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
