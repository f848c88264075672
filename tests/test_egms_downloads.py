"""EGMS products as a user ends up holding them: several releases of one burst, zips
damaged in transfer, a zip beside the CSV extracted from it, hand-edited headers.

The fixtures are written in the layout of the Copernicus downloads (2020_2024 and
2018_2022 headers, ``EGMS_L2b_{track}_{burst}_IW{n}_VV_{release}_{version}.zip`` holding
one ``.csv`` and one ``.xml``), a few MPs each.
"""

import warnings
import zipfile

import numpy as np
import pytest

from insar_raster.errors import InputError
from insar_raster.io import egms
from insar_raster.io.cache import cached_points
from insar_raster.io.points import read_points

ASC = {"track_angle": "-9.4912", "incidence_angle": "38.1022", "los_east": "-0.608714", "los_north": "-0.101634"}
ASC["los_up"] = "0.786913"
DESC = {"track_angle": "190.5830", "incidence_angle": "41.3101", "los_east": "0.648021", "los_north": "-0.121202"}
DESC["los_up"] = "0.751655"


def _dates(first, n=30):
    return [str(d).replace("-", "") for d in np.datetime64(first) + 6 * np.arange(n)]


def csv_text(release="2020_2024", level="L2b", n=12, geometry=ASC, seed=0, first="2020-01-07", sep=","):
    """An EGMS CSV of ``release`` (its header) with plausible values."""
    key = f"{'2020_2024' if release == '2020_2024' else '2018_2022'} {level}"
    columns = egms.HEADERS[key]
    dates = _dates(first)
    rng = np.random.default_rng(seed)
    lines = [sep.join(list(columns) + dates)]
    for i in range(n):
        meta = {
            "pid": f"1Q{seed}x{i:05d}",
            "mp_type": "PS",
            "latitude": f"{48.1 + 0.0005 * i:.7f}",
            "longitude": f"{11.5 + 0.0007 * i:.7f}",
            "easting": f"{4321050.0 + 53.1 * i:.1f}",
            "northing": f"{2787050.0 + 41.7 * i:.1f}",
            **geometry,
        }
        values = ["0.0"] + [f"{v:.1f}" for v in np.cumsum(rng.normal(0, 1, len(dates) - 1))]
        lines.append(sep.join([meta.get(c, f"{rng.uniform(0.1, 2):.2f}") for c in columns] + values))
    return "\n".join(lines) + "\n"


def product_zip(folder, name, text, compression=zipfile.ZIP_DEFLATED):
    """``name``.zip holding ``name``.csv and ``name``.xml, as distributed."""
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr(f"{name}.csv", text)
        zf.writestr(f"{name}.xml", f'<?xml version="1.0" encoding="UTF-8"?>\n<product name="{name}"/>\n')
    return path


L2B_2020 = "EGMS_L2b_015_0310_IW2_VV_2020_2024_1"
L2B_2018 = "EGMS_L2b_015_0310_IW2_VV_2018_2022_1"


def read(paths, reader, tmp_path, **kw):
    if reader == "memory":
        return read_points(paths, **kw)
    return cached_points(paths, cache_dir=tmp_path / "cache", **kw)


# --------------------------------------------------------------------------- releases


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_two_releases_of_one_burst_are_refused(tmp_path, reader):
    """Two releases of a burst are two processings of the same MPs (other pids, other
    reference dates): merged, they would count each MP twice over the few years they
    share and drop every other epoch."""
    new = product_zip(tmp_path, L2B_2020, csv_text("2020_2024"))
    old = product_zip(tmp_path, L2B_2018, csv_text("2018_2022", first="2018-01-05", seed=1))
    with pytest.raises(InputError) as err:
        read([new, old], reader, tmp_path)
    text = str(err.value)
    assert "different EGMS releases" in text
    assert f"{L2B_2020}.zip: 2020_2024" in text and f"{L2B_2018}.zip: 2018_2022" in text


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_renamed_files_of_two_releases_are_refused_by_their_columns(tmp_path, reader):
    """``asc.csv`` extracted from a 2020_2024 burst, ``asc_old.csv`` from the 2018_2022 one:
    the names say no release, but 2020_2024 renamed the columns (height_ortho, rmse_ts).
    Before: merged, over the dates both hold."""
    new = _renamed(tmp_path, "asc.csv", csv_text("2020_2024"))
    old = _renamed(tmp_path, "asc_old.csv", csv_text("2018_2022", seed=1))
    with pytest.raises(InputError) as err:
        read([new, old], reader, tmp_path)
    assert "different EGMS releases (asc.csv: 2020_2024 columns; asc_old.csv: columns of a release before" in str(
        err.value
    )
    # An EGMS name beside a renamed file: the name's release against the other's columns.
    no_family = _without(_without(csv_text("2018_2022", seed=2), "height_wgs84"), "rmse")
    assert egms.header_release(no_family.split("\n", 1)[0].split(",")) is None
    named_old = product_zip(tmp_path, L2B_2018, no_family)
    assert egms.header_release(egms.HEADERS["2018_2022 L2b"]) == egms.OLD_HEADER
    with pytest.raises(InputError, match="different EGMS releases"):
        read([new, named_old], reader, tmp_path / "b")
    more = _renamed(tmp_path, "more_old.csv", csv_text("2018_2022", seed=3))
    assert read([old, more], reader, tmp_path / "c").sizes["point"] == 24


def test_bursts_of_one_release_and_versions_still_merge(tmp_path):
    a = product_zip(tmp_path, "EGMS_L2b_015_0310_IW2_VV_2019_2023_1", csv_text("2019_2023"))
    b = product_zip(tmp_path, "EGMS_L2b_015_0311_IW2_VV_2019_2023_2", csv_text("2019_2023", seed=1))
    c = tmp_path / "mine.csv"  # not an EGMS name: its release is unknown, nothing to compare
    c.write_text(csv_text("2019_2023", seed=2))
    assert read_points([a, b, c]).sizes["point"] == 36


def test_releases_in_the_name_are_parsed():
    assert egms.release_of("EGMS_L3_E43N29_100km_U_2019_2023_1.zip") == "2019_2023"
    assert egms.release_of("x.zip!EGMS_L2a_015_0310_IW2_VV_2018_2022_2.csv") == "2018_2022"
    # The baseline and the first update carry no release in their names.
    assert egms.release_of("EGMS_L2b_015_0310_IW2_VV.zip") == egms.UNNAMED_RELEASE
    assert egms.release_of("points.csv") is None


def test_cli_grid_refuses_two_releases_in_one_line(tmp_path, capsys):
    from insar_raster.cli import main

    new = product_zip(tmp_path, L2B_2020, csv_text("2020_2024"))
    old = product_zip(tmp_path, L2B_2018, csv_text("2018_2022", first="2018-01-05", seed=1))
    out = tmp_path / "cube.nc"
    code = main(["grid", str(new), str(old), "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "different EGMS releases" in err[0] and "separately" in err[0]


def test_cli_decompose_refuses_two_releases(tmp_path, capsys):
    from insar_raster.cli import main

    asc = product_zip(tmp_path, L2B_2020, csv_text("2020_2024"))
    desc = product_zip(
        tmp_path,
        "EGMS_L2b_022_0320_IW1_VV_2018_2022_1",
        csv_text("2018_2022", geometry=DESC, first="2018-01-05", seed=1),
    )
    code = main(["grid", str(asc), str(desc), "--decompose", "-o", str(tmp_path / "d.nc")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "different EGMS releases" in err[0]


# --------------------------------------------------------------------------- damaged zips


def _damaged(tmp_path, how):
    """A product zip damaged in transfer (``crc``: a byte of the CSV changed, ``data``: a
    run of the compressed stream zeroed) or written with Deflate64 (``method``: the zip
    headers say compression method 9, which Python's zipfile cannot inflate)."""
    text = csv_text(n=40)
    stored = how == "crc"
    path = product_zip(tmp_path, L2B_2020, text, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    if how == "crc":
        at = raw.find(b"1Q0x00020")
        raw[at + 2] = ord("Z")
    elif how == "data":
        start = raw.find(b"PK\x03\x04") + 30 + len(f"{L2B_2020}.csv")
        raw[start + 200 : start + 400] = bytes(200)
    else:
        for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
            at = raw.find(signature)
            while at >= 0:
                raw[at + offset : at + offset + 2] = (9).to_bytes(2, "little")
                at = raw.find(signature, at + 4)
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("how", ["crc", "data", "method"])
@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_damaged_zip_is_an_input_error_naming_it(tmp_path, reader, how):
    path = _damaged(tmp_path, how)
    with pytest.raises(InputError) as err:
        read(path, reader, tmp_path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and f"{L2B_2020}.csv" in text
    assert ("download it again" in text) if how != "method" else ("extract the .csv" in text)


@pytest.mark.parametrize("command", ["grid", "info"])
def test_cli_a_damaged_zip_is_one_line_and_exit_2(tmp_path, capsys, command):
    from insar_raster.cli import main

    path = _damaged(tmp_path, "crc")
    args = [command, str(path)] + (["-o", str(tmp_path / "c.nc")] if command == "grid" else [])
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "damaged zip archive" in err[0] and "Traceback" not in err[0]


# --------------------------------------------------------------------------- a zip and its CSV


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_zip_beside_its_extracted_csv_is_read_once(tmp_path, reader, caplog):
    """Unzipping next to the download leaves both in the folder: one product, read once
    (from the zip), not twice with every pid a 'duplicate from overlapping tiles'."""
    import logging
    import warnings

    folder = tmp_path / "egms"
    folder.mkdir()
    text = csv_text()
    product_zip(folder, L2B_2020, text)
    (folder / f"{L2B_2020}.csv").write_text(text)
    (folder / f"{L2B_2020}.xml").write_text("<product/>")
    other = folder / "EGMS_L2b_015_0311_IW2_VV_2020_2024_1.csv"  # extracted, its zip deleted
    other.write_text(csv_text(seed=1))
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="insar_raster"):
        warnings.simplefilter("error")  # no duplicate-pid warning
        pts = read(folder, reader, tmp_path)
    assert pts.sizes["point"] == 24
    assert f"{L2B_2020}.csv" in caplog.text and f"{L2B_2020}.zip" in caplog.text
    # Files named one by one are the user's choice, but still one product.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_points([folder / f"{L2B_2020}.zip", folder / f"{L2B_2020}.csv"]).sizes["point"] == 12


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_conversion_beside_its_zip_is_read_once(tmp_path, reader):
    """A GeoPackage made from the download (for QGIS) kept in the product's folder: before,
    the folder was read twice, every pid a 'duplicate from overlapping tiles' (and the
    cache refused the folder: a .gpkg cannot be streamed)."""
    import io

    import geopandas as gpd
    import pandas as pd

    folder = tmp_path / "egms"
    folder.mkdir()
    text = csv_text()
    product_zip(folder, L2B_2020, text)
    frame = pd.read_csv(io.StringIO(text), dtype={"pid": str})
    gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.easting, frame.northing), crs=3035).to_file(
        folder / f"{L2B_2020}.gpkg"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no duplicate-pid warning
        assert read(folder, reader, tmp_path).sizes["point"] == 12


def test_a_zip_whose_csv_was_renamed_keeps_the_zip_name(tmp_path):
    """A product's zip holding ``data.csv`` (re-zipped by hand): the zip's name still says
    the level, track and release. Before: none of them, an L3 Up zip read as 'L3'."""
    up = tmp_path / "EGMS_L3_E32N34_100km_U_2020_2024_1.zip"
    with zipfile.ZipFile(up, "w") as zf:
        zf.writestr("data.csv", csv_text(level="L3"))
    assert read_points(up).attrs["product_level"] == "L3U"
    burst = tmp_path / f"{L2B_2018}.zip"
    with zipfile.ZipFile(burst, "w") as zf:
        zf.writestr("data.csv", csv_text("2018_2022", first="2018-01-05", seed=1))
    pts = read_points(burst)
    assert (pts.attrs["product_level"], pts.attrs["track"]) == ("L2b", 15)
    with pytest.raises(InputError, match="different EGMS releases"):
        read_points([burst, product_zip(tmp_path, L2B_2020, csv_text())])


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_product_downloaded_again_is_known_and_read_once(tmp_path, reader):
    """A browser saves a second download as ``EGMS_..._1 (1).zip``. Before: that name was
    no EGMS name (no level, track or release: a second release beside it was merged), and
    with the first download in the folder every pid was a duplicate."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    first = product_zip(folder, L2B_2020, csv_text())
    again = folder / f"{L2B_2020} (1).zip"
    again.write_bytes(first.read_bytes())
    pts = read([again], reader, tmp_path)
    assert (pts.attrs["product_level"], pts.attrs["track"]) == ("L2b", 15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no duplicate-pid warning
        assert read([folder], reader, tmp_path / "both").sizes["point"] == 12
    old = product_zip(tmp_path, L2B_2018, csv_text("2018_2022", first="2018-01-05", seed=1))
    with pytest.raises(InputError, match="different EGMS releases"):
        read([again, old], reader, tmp_path / "old")


@pytest.mark.parametrize("reader", ["memory", "cache"])
@pytest.mark.parametrize(
    "copy",
    [
        "{} - Copy.zip",
        "{} - Copy (2).zip",
        "Copy of {}.zip",
        "Copy (2) of {}.zip",
        "{} copy 2.zip",
        "{} - Kopie.zip",
        "{} (copy).zip",
    ],
)
def test_a_file_manager_copy_beside_the_product_is_read_once(tmp_path, reader, copy):
    """Windows Explorer names a copy ``X - Copy.zip`` (older Windows ``Copy of X.zip``),
    macOS Finder ``X copy 2.zip``, GNOME Files ``X (copy).zip``. Before: beside the original, every MP was read twice
    (the copy's dropped again as 'duplicate pids from overlapping tiles')."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    first = product_zip(folder, L2B_2020, csv_text())
    again = folder / copy.format(L2B_2020)
    again.write_bytes(first.read_bytes())
    assert egms.extracted_copies([first, again]) == {again: first}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no duplicate-pid warning
        assert read([folder], reader, tmp_path).sizes["point"] == 12
    alone = read([again], reader, tmp_path / "alone")  # the copy alone: still an EGMS name
    assert (alone.attrs["product_level"], alone.attrs["track"], alone.sizes["point"]) == ("L2b", 15, 12)
    # Another product whose name only starts the same is no copy: both are read.
    subset = folder / f"{L2B_2020}_subset.zip"
    subset.write_bytes(first.read_bytes())
    assert egms.extracted_copies([first, subset]) == {}


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_file_given_twice_is_read_once(tmp_path, reader, capsys):
    """``grid downloads/ downloads/X.zip`` (a folder and a file in it) or ``X.zip ./X.zip``.
    Before: read twice, the second set dropped as 'duplicate pids from overlapping tiles'."""
    from insar_raster.cli import main

    folder = tmp_path / "downloads"
    folder.mkdir()
    first = product_zip(folder, L2B_2020, csv_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no duplicate-pid warning
        pts = read([folder, first, folder / "." / first.name], reader, tmp_path)
    assert pts.sizes["point"] == 12 and pts.attrs["source"] == f"{first.name}!{first.stem}.csv"  # once
    out = tmp_path / "cube.nc"
    assert main(["grid", str(folder), str(first), "-o", str(out), "--method", "nearest"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("reading ")] == [f"reading {first.name} once: it was given 2 times"]
    assert not [line for line in err if line.startswith("warning")]


def test_copy_markers_are_stripped_only_where_a_file_manager_puts_them():
    base = "EGMS_L3_E40N28_100km_E"  # the baseline's name: no release to end it
    for marker in (
        " (1)",
        " - Copy",
        " - copy (3)",
        " (1) - Copy",
        " - Kopie (2)",
        " - Copie",
        " - Copia",
        " - Kopia",
        " (copy)",
        " (another copy)",
        " (3rd copy)",
        " (11th copy)",
    ):
        name = base + marker
        assert egms.without_copy_marker(name) == base
        assert egms.parse_file_name(f"{name}.zip").level == "L3E"
    assert egms.without_copy_marker(f"Copy of {base}") == base
    for name in (f"{base}_copy", f"{base}copy", f"copy_of_{base}", f"{base} - Copy2", f"{base} (copy"):
        assert egms.without_copy_marker(name) == name


def test_cli_says_once_which_copy_it_leaves_out(tmp_path, capsys):
    from insar_raster.cli import main

    first = product_zip(tmp_path, L2B_2020, csv_text())
    (tmp_path / f"{L2B_2020}.csv").write_text(csv_text())
    (tmp_path / f"{L2B_2020} - Copy.zip").write_bytes(first.read_bytes())
    assert main(["grid", str(tmp_path), "-o", str(tmp_path / "cube.nc"), "--method", "nearest"]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("reading ")]
    assert sorted(said) == [
        f"reading {L2B_2020} - Copy.zip from {first.name} only: the .zip is a copy of it (downloaded again, or copied)",
        f"reading {L2B_2020}.csv from {first.name} only: the .csv is its extracted copy",
    ]


def test_a_zip_of_product_zips_says_so(tmp_path):
    """A folder of downloads zipped again for transfer: before, 'zip archive holds no .csv
    file', which did not say what to do."""
    inner = product_zip(tmp_path, L2B_2020, csv_text())
    outer = tmp_path / "transfer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, f"egms/{inner.name}")
    with pytest.raises(InputError, match=f"holds no .csv file but 1 zip archive.s. .{inner.name}.*extract it"):
        read_points(outer)


def test_csvs_that_only_share_a_stem_with_a_non_egms_zip_are_kept(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    text = csv_text()
    (folder / "points.csv").write_text(text)
    with zipfile.ZipFile(folder / "points.zip", "w") as zf:
        zf.writestr("points.csv", csv_text(seed=1))
    assert read_points(folder).sizes["point"] == 24


# --------------------------------------------------------------------------- headers edited by hand


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_header_with_spaces_after_the_separators_reads_like_the_original(tmp_path, reader):
    """``pid, mp_type, ...`` (a CSV saved by hand or by a script joining with ', ')."""
    plain = tmp_path / f"{L2B_2020}.csv"
    plain.write_text(csv_text())
    spaced = tmp_path / "spaced" / f"{L2B_2020}.csv"
    spaced.parent.mkdir()
    spaced.write_text(csv_text(sep=", "))
    a = read_points(plain)
    b = read(spaced, reader, tmp_path)
    np.testing.assert_array_equal(np.asarray(b.displacement.values), a.displacement.values)
    np.testing.assert_array_equal(b.pid.values, a.pid.values)
    assert b.attrs["pass_direction"] == "ascending" and b.attrs["track"] == 15
    np.testing.assert_allclose(b["los_up"].values, a["los_up"].values)


def test_decompose_counts_mps_without_a_los_vector(tmp_path, caplog):
    """An MP whose los_east/los_up are empty cannot enter the 2x2 system: it is left out
    and the geometry's summary line says how many, rather than a quiet 38 of 39."""
    import logging

    from insar_raster.grid.decompose import decompose_los

    lines = csv_text(n=12).splitlines()
    columns = lines[0].split(",")
    row = lines[4].split(",")
    for name in ("los_east", "los_north", "los_up"):
        row[columns.index(name)] = ""
    lines[4] = ",".join(row)
    asc = tmp_path / f"{L2B_2020}.csv"
    asc.write_text("\n".join(lines) + "\n")
    desc = tmp_path / "EGMS_L2b_022_0320_IW1_VV_2020_2024_1.csv"
    desc.write_text(csv_text(n=12, geometry=DESC, seed=1))
    with caplog.at_level(logging.INFO, logger="insar_raster"):
        decompose_los([read_points(asc), read_points(desc)])
    line = next(r.getMessage() for r in caplog.records if "ascending, " in r.getMessage())
    assert "11 MPs (1 more without a LOS vector left out)" in line


# --------------------------------------------------------------------------- EGMStoolkit's merged files


@pytest.mark.parametrize(
    "name, expected",
    [
        ("EGMS_L2b_015_VV_2018_2022_1.csv", egms.FileName("L2b", "2018_2022", 1, track=15)),
        ("EGMS_L2a_146_VV_2019_2023_1_clipped.csv", egms.FileName("L2a", "2019_2023", 1, track=146)),
        ("EGMS_L2b_015_VV_2020_2024_1_2.csv", egms.FileName("L2b", "2020_2024", 1, track=15)),  # a .vrt part
        ("EGMS_L2b_015_VV.csv", egms.FileName("L2b", None, None, track=15)),  # 2015_2021
        ("EGMS_L3_2018_2022_1_UD.csv", egms.FileName("L3U", "2018_2022", 1)),
        ("EGMS_L3_2019_2023_1_EW_clipped.csv", egms.FileName("L3E", "2019_2023", 1)),
        ("EGMS_L3_UD.csv", egms.FileName("L3U", None, None)),
        ("EGMS_L2b_015_0310_IW2_VV_2018_2022_1_clipped.csv", egms.FileName("L2b", "2018_2022", 1, 15, 310, 2)),
        ("EGMS_L3_2018_2022_1_NS.csv", None),
    ],
)
def test_egmstoolkit_merged_names_are_parsed(name, expected):
    assert egms.parse_file_name(name) == expected


def _toolkit_csv(text):
    """EGMStoolkit's merged layout: pandas ``to_csv(sep=';')`` of the frame indexed by pid."""
    return text.replace(",", ";")


def test_egmstoolkit_merged_up_and_east_are_not_averaged(tmp_path):
    """Merged L3 files have no tile in their names: before these names were read, Up and
    East looked like two unnamed L3 files and merged into one cube."""
    up = tmp_path / "EGMS_L3_2018_2022_1_UD.csv"
    up.write_text(_toolkit_csv(csv_text("2018_2022", level="L3", first="2018-01-05")))
    east = tmp_path / "EGMS_L3_2018_2022_1_EW.csv"
    east.write_text(_toolkit_csv(csv_text("2018_2022", level="L3", first="2018-01-05", seed=1)))
    assert read_points(up).attrs["product_level"] == "L3U"
    with pytest.raises(egms.MixedGeometryError, match="L3U .vertical.*L3E .east-west."):
        read_points([up, east])


def test_egmstoolkit_merged_tracks_keep_their_track(tmp_path):
    a = tmp_path / "EGMS_L2b_015_VV_2018_2022_1.csv"
    a.write_text(_toolkit_csv(csv_text("2018_2022", first="2018-01-05")))
    b = tmp_path / "EGMS_L2b_117_VV_2018_2022_1.csv"  # another ascending track
    b.write_text(_toolkit_csv(csv_text("2018_2022", first="2018-01-05", seed=1)))
    pts = read_points(a)
    assert (pts.attrs["product_level"], pts.attrs["track"], pts.attrs["pass_direction"]) == ("L2b", 15, "ascending")
    with pytest.raises(egms.MixedGeometryError, match="track 15 ascending.*track 117 ascending"):
        read_points([a, b])


# --------------------------------------------------------------------------- what a cube says it holds


def test_info_on_a_cube_names_its_geometry_and_every_source_zip(tmp_path):
    """Which points a cube may be forecast at depends on the geometry grid recorded:
    info shows it; and a CSV inside a folder of its zip is still named with the zip."""
    from insar_raster.cli import main
    from insar_raster.info import describe

    path = tmp_path / f"{L2B_2020}.zip"
    with zipfile.ZipFile(path, "w") as zf:  # the CSV and .xml in a folder, as some downloads have it
        zf.writestr(f"{L2B_2020}/{L2B_2020}.csv", csv_text())
        zf.writestr(f"{L2B_2020}/{L2B_2020}.xml", "<product/>")
    cube = tmp_path / "cube.nc"
    assert main(["grid", str(path), "-o", str(cube), "--method", "nearest"]) == 0
    attrs = describe(cube)["attributes"]
    assert (attrs["product_level"], attrs["track"], attrs["pass_direction"]) == ("L2b", 15, "ascending")
    assert attrs["source"] == f"{L2B_2020}.zip!{L2B_2020}.csv"


# --------------------------------------------------------------------------- what the name and the header say


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_tab_separated_files_with_an_empty_first_or_last_column_are_read(tmp_path, reader):
    """A tab at the start of the header (pandas' unnamed index column: ``to_csv(sep="\\t")``)
    or at the end of every line (an empty last column) was stripped from the header as
    whitespace: the rows had one field more than the header, and the file was refused as
    'malformed or truncated row'. The same files with commas were read."""
    text = csv_text(seed=3)
    lines = text.splitlines()
    expected = read([_renamed(tmp_path, "plain.csv", text)], reader, tmp_path / "a")
    indexed = "\n".join(
        ["\t" + lines[0].replace(",", "\t")] + [f"{i}\t" + line.replace(",", "\t") for i, line in enumerate(lines[1:])]
    )
    trailing = "".join(line.replace(",", "\t") + "\t\r\n" for line in lines)
    for k, body in enumerate((indexed + "\n", trailing)):
        folder = tmp_path / f"t{k}"
        folder.mkdir()
        pts = read([_renamed(folder, "tile.tsv.csv", body)], reader, tmp_path / f"c{k}")
        np.testing.assert_array_equal(pts.displacement.values, expected.displacement.values)
        assert list(pts.pid.values) == list(expected.pid.values) and pts.attrs["pass_direction"] == "ascending"


def _renamed(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_l3_up_and_east_renamed_by_their_component_are_not_averaged(tmp_path, reader):
    """L3 Up and East have the same header: extracted and renamed ``up.csv`` and
    ``east.csv``, only the names' words tell them apart. Before, both were 'L3' and merged
    into one cube (U and E averaged, or the same cells' pids dropped as duplicates)."""
    up = _renamed(tmp_path, "up.csv", csv_text(level="L3"))
    east = _renamed(tmp_path, "east.csv", csv_text(level="L3", seed=1))
    assert read([up], reader, tmp_path).attrs["product_level"] == "L3U"
    with pytest.raises(egms.MixedGeometryError, match=r"up.csv: L3U \(vertical\); east.csv: L3E \(east-west\)"):
        read([up, east], reader, tmp_path)


@pytest.mark.parametrize(
    "name, level",
    [
        ("up.csv", "L3U"),
        ("milan_vertical.csv", "L3U"),
        ("E32N34_UD.csv", "L3U"),
        ("L3-East-2020.gpkg", "L3E"),
        ("tile_EW.csv", "L3E"),
        ("east_west.parquet", "L3E"),
        ("tile1.csv", None),
        ("up_and_east.csv", None),  # both: not told
        ("x.zip!EGMS_L3/unzipped_u.csv", "L3U"),
    ],
)
def test_l3_component_from_the_words_of_a_name(name, level):
    assert egms.l3_component_of_name(name) == level


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_l3_files_whose_names_say_nothing_are_refused_together_and_one_alone_says_l3(tmp_path, reader):
    """Two L3 files renamed ``tile1.csv``, ``tile2.csv`` may be Up and East of one tile:
    their headers are the same. Before: merged with a warning into one cube (Up and East
    averaged, or the second's pids dropped as duplicates)."""
    a = _renamed(tmp_path, "tile1.csv", csv_text(level="L3"))
    b = _renamed(tmp_path, "tile2.csv", csv_text(level="L3", seed=1))
    with pytest.raises(InputError, match="the names of tile1.csv, tile2.csv do not say which: gridded together"):
        read([a, b], reader, tmp_path)
    up = _renamed(tmp_path, "up.csv", csv_text(level="L3", seed=2))  # one side named: the other may be East
    with pytest.raises(
        InputError, match=r"the name of tile1.csv does not say which, beside up.csv: L3U \(vertical\): "
    ):
        read([a, up], reader, tmp_path / "up")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one such file alone is simply L3, no warning
        pts = read([a], reader, tmp_path / "one")
    assert pts.attrs["product_level"] == "L3"  # before: no level at all, any points accepted on its cube
    # LOS points are no L3 component: refused on a cube gridded from these.
    with pytest.raises(InputError, match="the points are LOS ascending but the cube holds L3 .Up or East not named."):
        egms.check_points_on_cube(egms.Geometry(None, None, "ascending", "L2"), pts.attrs, "asc.csv")
    egms.check_points_on_cube(egms.Geometry("L3E"), pts.attrs, "east.csv")  # may be East: passes


def test_cli_grid_refuses_two_unnamed_l3_files_in_one_line(tmp_path, capsys):
    from insar_raster.cli import main

    a = _renamed(tmp_path, "tile1.csv", csv_text(level="L3"))
    b = _renamed(tmp_path, "tile2.csv", csv_text(level="L3", seed=1))
    out = tmp_path / "cube.nc"
    code = main(["grid", str(a), str(b), "-o", str(out), "--method", "nearest"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "tile1.csv, tile2.csv do not say which" in err[0] and "grid each file in a separate run" in err[0]
    assert "--decompose" not in err[0]  # it takes LOS bursts, not L3
    assert main(["grid", str(a), "-o", str(out), "--method", "nearest"]) == 0  # alone: gridded


def test_cli_an_l2a_header_under_an_l2b_name_is_read_as_named_with_a_warning(tmp_path, capsys):
    """``cluster_label`` is only in L2a files of the older releases: under an L2b name the
    file was renamed, or its content replaced. The name decides (documented precedence),
    and the user is told once. Before: read as L2b without a word."""
    from insar_raster.cli import main
    from insar_raster.info import describe

    path = _renamed(tmp_path, f"{L2B_2018}.csv", csv_text("2018_2022", level="L2a", first="2018-01-05"))
    out = tmp_path / "cube.nc"
    assert main(["grid", str(path), "-o", str(out), "--method", "nearest"]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert (
        len(said) == 1
        and f"{L2B_2018}.csv: the file name says EGMS L2b but the columns include cluster_label" in said[0]
    )
    assert describe(out)["attributes"]["product_level"] == "L2b"
    # Under an L2a name (or no EGMS name), the same file is L2a, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = _renamed(tmp_path, "EGMS_L2a_015_0310_IW2_VV_2018_2022_1.csv", path.read_text())
        assert read_points(ok).attrs["product_level"] == "L2a"
        assert read_points(_renamed(tmp_path, "mine.csv", path.read_text())).attrs["product_level"] == "L2a"


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_l2a_and_l2b_of_one_burst_are_refused_together(tmp_path, reader):
    """Both levels of a burst downloaded into one folder: the same scatterers, L2a
    relative to a local reference point, L2b to GNSS. Before: merged (here the second's
    MPs dropped as duplicate pids from 'overlapping tiles'), the cube's level left empty."""
    basic = product_zip(tmp_path, "EGMS_L2a_015_0310_IW2_VV_2020_2024_1", csv_text())
    calibrated = product_zip(tmp_path, L2B_2020, csv_text())
    with pytest.raises(InputError, match="inputs mix EGMS L2a .* and L2b .*_L2a_015_0310.*zip: L2a; .*zip: L2b"):
        read([tmp_path], reader, tmp_path)
    assert read([calibrated], reader, tmp_path).attrs["product_level"] == "L2b"
    assert read([basic], reader, tmp_path / "a").attrs["product_level"] == "L2a"


def _with_cluster_label(text):
    """The CSV with an older L2a's ``cluster_label`` column added before ``rmse``/``rmse_ts``."""
    lines = [line.split(",") for line in text.strip().split("\n")]
    j = next(i for i, c in enumerate(lines[0]) if c.startswith("rmse"))
    lines = [line[:j] + ["cluster_label" if k == 0 else "3"] + line[j:] for k, line in enumerate(lines)]
    return "\n".join(",".join(line) for line in lines) + "\n"


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_an_unnamed_2020_2024_file_with_cluster_label_is_l2a_of_2020_2024(tmp_path, reader):
    """2020_2024 gave L2a and L2b one header; ``cluster_label`` is the older L2a's. An
    unnamed 2020_2024 file that has it is L2a (the column's documented meaning), and its
    renamed columns (height_ortho, rmse_ts) still say 2020_2024. Before: cluster_label
    counted as an older release's column, so the header said no release, and the file was
    merged with a 2018_2022 burst."""
    text = _with_cluster_label(csv_text("2020_2024"))
    header = text.split("\n", 1)[0].split(",")
    assert egms.header_kind(header) == "L2a" and egms.header_release(header) == egms.NEW_HEADER
    mine = _renamed(tmp_path, "mine.csv", text)
    assert read([mine], reader, tmp_path).attrs["product_level"] == "L2a"
    old = _renamed(tmp_path, "old.csv", csv_text("2018_2022", level="L2a", seed=1))
    with pytest.raises(InputError, match="different EGMS releases .mine.csv: 2020_2024 columns; old.csv: columns of a"):
        read([mine, old], reader, tmp_path / "old")
    burst = product_zip(tmp_path, L2B_2020, csv_text(seed=2))  # an L2b burst of its release: L2a with L2b
    with pytest.raises(InputError, match=r"inputs mix EGMS L2a .*mine.csv: L2a; .*zip: L2b"):
        read([mine, burst], reader, tmp_path / "l2b")
    # Without the renamed columns, cluster_label still tells an older release.
    assert egms.header_release(["pid", "easting", "northing", "cluster_label"]) == egms.OLD_HEADER
    # Without cluster_label the 2020_2024 header cannot tell L2a from L2b: no level claimed.
    plain = _renamed(tmp_path, "plain.csv", csv_text("2020_2024", seed=3))
    assert "product_level" not in read([plain], reader, tmp_path / "plain").attrs


def test_a_file_with_only_pid_coordinates_and_dates_claims_no_level(tmp_path):
    """``pid, easting, northing, dates`` (an L2b file with its other columns removed) was
    taken for L3 and refused beside its own burst as 'L3 (Up or East not named)'."""
    full = csv_text().splitlines()
    header = full[0].split(",")
    keep = [i for i, c in enumerate(header) if c in ("pid", "easting", "northing") or c.isdigit()]
    bare = [",".join(line.split(",")[i] for i in keep) for line in full]
    assert egms.header_kind(bare[0].split(",")) is None
    path = _renamed(tmp_path, "stripped.csv", "\n".join(bare) + "\n")
    other = product_zip(tmp_path, "EGMS_L2b_015_0311_IW2_VV_2020_2024_1", csv_text(seed=1))
    pts = read_points([path, other])
    assert pts.sizes["point"] == 24 and pts.attrs["product_level"] == "L2b"
    alone = read_points(path)
    assert "product_level" not in alone.attrs and alone.attrs["product"] == "EGMS"  # was "EGMS L3"
    assert alone.rio.crs.to_epsg() == 3035  # still read by the EGMS rules


# --------------------------------------------------------------------------- the zip's XML header file


def egms_xml(level, burst="0310"):
    """An XML header file in the layout of the EGMS Product Description and Format
    Specification (v2.0, Appendix A, "XML Header File", tables 9 and 10): ``<BURST>``, its
    ``product_level`` first, then the production fields (``gnss`` for L2b/L3,
    ``clusters`` for L2a) and the Sentinel-1 images used."""
    model = "" if level == "L2a" else "  <gnss>\n    <version>2024.0</version>\n  </gnss>\n"
    clusters = "  <clusters>0</clusters>\n" if level == "L2a" else ""
    image = (
        "    <image>\n"
        "      <product_id>S1A_IW_SLC__1SDV_{0}T052240_{0}T052307_030689_038496</product_id>\n"
        "      <orbit_type> AUX_POEORB</orbit_type>\n"
        "    </image>\n"
    )
    return (
        '<?xml version="1.0"?>\n<BURST>\n'
        f"  <product_level>{level}</product_level>\n  <burst_id>{burst}</burst_id>\n"
        "  <production_facility>3</production_facility>\n  <production_date>14/03/2025</production_date>\n"
        "  <dem>\n    <version>COP-DEM GLO-30 2022_1</version>\n  </dem>\n"
        "  <corine>\n    <version>2018</version>\n  </corine>\n  <sce>\n    <version></version>\n  </sce>\n"
        f"{model}{clusters}"
        f"  <reference>\n{image.format('20220611')}  </reference>\n"
        f"  <dataset>\n{image.format('20200107')}{image.format('20220611')}  </dataset>\n"
        "</BURST>\n"
    )


def _zipped(folder, name, text, xml_text=None):
    """``text`` as ``name``.csv packed by :func:`egms.write_zip` into ``name``.zip."""
    csv = _renamed(folder, f"{name}.csv", text)
    path = egms.write_zip(csv, folder / f"{name}.zip", xml_text=xml_text)
    csv.unlink()
    return path


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_renamed_2020_2024_l2a_in_its_zip_is_told_by_the_zips_xml(tmp_path, reader):
    """A 2020_2024 L2a burst whose CSV was renamed and zipped with the product's XML
    header file: its header is L2b's too, so the level was not told and the file merged
    with L2b bursts. The XML's ``<product_level>`` says L2a."""
    basic = _zipped(tmp_path, "mine", csv_text(seed=4), egms_xml("L2a"))
    assert read([basic], reader, tmp_path / "a").attrs["product_level"] == "L2a"
    burst = product_zip(tmp_path, L2B_2020, csv_text(seed=2))
    with pytest.raises(InputError, match=r"inputs mix EGMS L2a .*mine.zip: L2a; .*_IW2_VV_2020_2024_1.zip: L2b"):
        read([basic, burst], reader, tmp_path / "b")
    # Only the CSV renamed: the zip's one XML, under the product's name, is its header file.
    only_csv = tmp_path / "only_csv.zip"
    with zipfile.ZipFile(only_csv, "w") as zf:
        zf.writestr("milan_asc.csv", csv_text(seed=5))
        zf.writestr("EGMS_L2a_015_0310_IW2_VV_2020_2024_1.xml", egms_xml("L2a"))
    assert read([only_csv], reader, tmp_path / "c").attrs["product_level"] == "L2a"
    # An XML without <product_level> (write_zip's, where nothing tells the level) tells nothing: no level.
    plain = _zipped(tmp_path, "plain", csv_text(seed=6))
    assert "product_level" not in read([plain], reader, tmp_path / "d").attrs
    assert read([plain, burst], reader, tmp_path / "e").attrs["product_level"] == "L2b"


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_the_zips_xml_is_read_once_per_read(tmp_path, reader, monkeypatch):
    """The streaming cache took the level from the XML for each CSV, then again when the
    first rows gave the pass direction: the XML header file was opened twice."""
    basic = _zipped(tmp_path, "mine", csv_text(seed=4), egms_xml("L2a"))
    assert "track_angle" in csv_text(seed=4).splitlines()[0]  # the first rows tell the pass direction
    read_xml = egms.zip_xml_level
    calls = []
    monkeypatch.setattr(egms, "zip_xml_level", lambda name: calls.append(name) or read_xml(name))
    points = read([basic], reader, tmp_path)
    assert calls == [f"{basic}!mine.csv"]
    assert (points.attrs["product_level"], points.attrs["pass_direction"]) == ("L2a", "ascending")


def _extracted(folder, csv_name, text, xml_name=None, xml_text=None):
    """A product unzipped into ``folder``: its CSV as ``csv_name`` and, when given, its XML
    header file as ``xml_name`` (default: the CSV's name with ``.xml``)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = _renamed(folder, csv_name, text)
    if xml_text is not None:
        (folder / (xml_name or f"{csv.stem}.xml")).write_text(xml_text)
    return csv


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_an_extracted_csv_takes_its_level_from_the_xml_beside_it(tmp_path, reader):
    """A 2020_2024 L2a burst unzipped and its CSV renamed: the header is L2b's too, and the
    XML header file beside it was not read (only the one inside a zip was), so the file
    claimed no level and merged with L2b bursts."""
    basic = _extracted(tmp_path / "a", "mine.csv", csv_text(seed=4), xml_text=egms_xml("L2a"))
    assert read([basic], reader, tmp_path / "c1").attrs["product_level"] == "L2a"
    burst = product_zip(tmp_path / "a", L2B_2020, csv_text(seed=2))  # beside it: the same-name XML is chosen
    with pytest.raises(InputError, match=r"inputs mix EGMS L2a .*mine.csv: L2a; .*_IW2_VV_2020_2024_1.zip: L2b"):
        read([basic, burst], reader, tmp_path / "c2")
    # Any case of the suffix; an XML for the L2b level reads as L2b.
    upper = _extracted(tmp_path / "b", "asc.csv", csv_text(seed=5), "asc.XML", egms_xml("L2b"))
    assert read([upper], reader, tmp_path / "c3").attrs["product_level"] == "L2b"
    # Only the CSV renamed: the folder's one CSV and one XML (under the product's name) belong together.
    only_csv = _extracted(tmp_path / "c", "milan_asc.csv", csv_text(seed=6), f"{L2B_2020}.xml", egms_xml("L2a"))
    assert read([only_csv], reader, tmp_path / "c4").attrs["product_level"] == "L2a"
    # Two CSVs and an XML named after neither: which CSV it describes is not told.
    _renamed(tmp_path / "c", "milan_desc.csv", csv_text(seed=7))
    assert "product_level" not in read([only_csv], reader, tmp_path / "c5").attrs


def test_the_points_cache_is_rebuilt_when_the_xml_beside_a_csv_changes(tmp_path):
    """The cache is keyed by its input files: an XML header file put beside the CSV after a
    first read must give the level, not the cache built without it."""
    csv = _extracted(tmp_path / "d", "mine.csv", csv_text(seed=4))
    assert "product_level" not in cached_points([csv], cache_dir=tmp_path / "cache").attrs
    (tmp_path / "d" / "mine.xml").write_text(egms_xml("L2a"))
    assert cached_points([csv], cache_dir=tmp_path / "cache").attrs["product_level"] == "L2a"


def test_a_folder_of_many_csvs_is_listed_once_to_find_their_xmls(tmp_path, monkeypatch):
    """Every input's XML is looked for (the cache key describes it): listing the folder once
    per CSV took 108 s for a folder of 3,000 CSVs. It is listed once, and again only when
    its entries change."""
    import os

    folder = tmp_path / "tiles"
    folder.mkdir()
    files = [_renamed(folder, f"t{i}.csv", "") for i in range(50)]
    (folder / "t7.xml").write_text(egms_xml("L2a"))
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p: listed.append(p) or scandir(p))
    found = [egms.sibling_xml(f) for f in files]
    assert found == [folder / "t7.xml" if i == 7 else None for i in range(50)] and len(listed) == 1
    (folder / "t8.XML").write_text(egms_xml("L2b"))
    os.utime(folder, ns=(folder.stat().st_atime_ns, folder.stat().st_mtime_ns + 10**9))  # coarse clocks
    assert egms.sibling_xml(files[8]) == folder / "t8.XML" and len(listed) == 2


def test_the_name_and_the_header_win_over_the_xml_beside_an_extracted_csv(tmp_path):
    named = _extracted(tmp_path / "a", f"{L2B_2020}.csv", csv_text(), xml_text=egms_xml("L2a"))
    up = _extracted(tmp_path / "b", "up.csv", csv_text(level="L3", seed=3), xml_text=egms_xml("L2a"))
    los = _extracted(tmp_path / "c", "los.csv", csv_text(seed=4), xml_text=egms_xml("L3"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_points(named).attrs["product_level"] == "L2b"
        assert read_points(up).attrs["product_level"] == "L3U"
        assert "product_level" not in read_points(los).attrs  # an L2 header under an XML saying L3


def test_cli_grid_refuses_an_l2a_told_by_its_xml_beside_l2b_in_one_line(tmp_path, capsys):
    from insar_raster.cli import main

    basic = _zipped(tmp_path, "mine", csv_text(seed=4), egms_xml("L2a"))
    burst = product_zip(tmp_path, L2B_2020, csv_text(seed=2))
    out = tmp_path / "cube.nc"
    code = main(["grid", str(basic), str(burst), "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "inputs mix EGMS L2a" in err[0] and "mine.zip: L2a" in err[0]
    # The same burst unzipped into a folder: its XML beside the CSV says L2a too.
    extracted = _extracted(tmp_path / "unzipped", "mine.csv", csv_text(seed=4), xml_text=egms_xml("L2a"))
    code = main(["grid", str(extracted.parent), str(burst), "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "inputs mix EGMS L2a" in err[0] and "mine.csv: L2a" in err[0]


def test_the_name_and_the_header_win_over_the_zips_xml(tmp_path):
    """The XML is read only where the name and the header do not tell the level."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # An EGMS name keeps its level, whatever the XML says.
        named = _zipped(tmp_path, L2B_2020, csv_text(), egms_xml("L2a"))
        assert read_points(named).attrs["product_level"] == "L2b"
        l2a = _zipped(tmp_path, "EGMS_L2a_015_0311_IW2_VV_2020_2024_1", csv_text(seed=1), egms_xml("L2b"))
        assert read_points(l2a).attrs["product_level"] == "L2a"
        # An older L2a header (cluster_label): L2a, an XML saying L2b is not read.
        old = _zipped(tmp_path, "old", csv_text("2018_2022", level="L2a", seed=2), egms_xml("L2b"))
        assert read_points(old).attrs["product_level"] == "L2a"
        # An L3 header keeps its L3 (the word "up" says the component) over an XML saying L2a.
        up = _zipped(tmp_path, "up", csv_text(level="L3", seed=3), egms_xml("L2a"))
        assert read_points(up).attrs["product_level"] == "L3U"
        # An L2 header under an XML saying L3: they contradict, the XML is ignored.
        los = _zipped(tmp_path, "los", csv_text(seed=4), egms_xml("L3"))
        assert "product_level" not in read_points(los).attrs
    # A header that says nothing (pid, coordinates and dates) takes the XML's level.
    full = csv_text(seed=5).splitlines()
    keep = [i for i, c in enumerate(full[0].split(",")) if c in ("pid", "easting", "northing") or c.isdigit()]
    bare = "\n".join(",".join(line.split(",")[i] for i in keep) for line in full) + "\n"
    assert read_points(_zipped(tmp_path, "bare", bare, egms_xml("L2b"))).attrs["product_level"] == "L2b"


HOSTILE_XML = {
    "not xml": "<BURST><product_level>L2a</product_level>",
    "unknown level": egms_xml("L2a").replace(">L2a<", ">L2c<"),
    "empty level": egms_xml("L2a").replace(">L2a<", "><"),
    "another layout": '<?xml version="1.0"?>\n<product name="x" level="L2a"><meta><product_level>L2a</product_level></meta></product>',
    "external entity": '<?xml version="1.0"?>\n<!DOCTYPE BURST [<!ENTITY lv SYSTEM "file:///etc/hostname">]>\n'
    "<BURST><product_level>&lv;</product_level></BURST>",
    "entity expansion": '<?xml version="1.0"?>\n<!DOCTYPE BURST [<!ENTITY a "L2a">]>\n'
    "<BURST><product_level>&a;</product_level></BURST>",
    "undefined entity": "<BURST><product_level>&lv;</product_level></BURST>",
    "empty file": "",
}


@pytest.mark.parametrize("xml_text", list(HOSTILE_XML.values()), ids=list(HOSTILE_XML))
def test_a_malformed_or_unknown_xml_is_ignored(tmp_path, xml_text):
    """The XML can only add a level: one that cannot be read, says something else, or
    declares entities (never expanded nor fetched) leaves the file as its CSV says."""
    assert egms.xml_product_level(xml_text.encode()) is None
    path = tmp_path / "mine.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mine.csv", csv_text())
        zf.writestr("mine.xml", xml_text)
    extracted = _extracted(tmp_path / "unzipped", "mine.csv", csv_text(), xml_text=xml_text)  # beside, not in a zip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pts = read_points(path)
        beside = read_points(extracted)
    assert pts.sizes["point"] == 12 and "product_level" not in pts.attrs
    assert beside.sizes["point"] == 12 and "product_level" not in beside.attrs


def test_the_documented_xml_layout_is_read():
    """The level of every documented value (stripped of the spaces the specification's
    example has around values), in UTF-8 with or without a BOM; nothing else."""
    assert [egms.xml_product_level(egms_xml(level).encode()) for level in ("L2a", "L2b", "L3")] == ["L2a", "L2b", "L3"]
    assert egms.xml_product_level(b"\xef\xbb\xbf" + egms_xml(" L2b ").encode()) == "L2b"
    assert egms.xml_product_level(egms_xml("L2a").encode("utf-16")) is None  # not read: see the docstring
    assert egms.zip_xml_level("mine.csv") is None  # not in a zip
    assert egms.sibling_xml_level("nowhere/mine.csv") is None  # no folder, no XML: nothing, no error
    # <track> and <sub_swath>, which a third-party reader of 2020_2024 files looks for: the level is still read.
    more = egms_xml("L2a").replace("  <burst_id>", "  <track>044</track>\n  <sub_swath>2</sub_swath>\n  <burst_id>")
    assert egms.xml_product_level(more.encode()) == "L2a"


# --------------------------------------------------------------------------- conversions (GDAL, GeoPandas)


def _with_an_empty_value(text):
    """The CSV with the last epoch of its third MP empty, as a gap is written."""
    lines = text.splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ","
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "options",
    [{}, {"AUTODETECT_TYPE": "YES"}, {"HEADERS": "YES"}, {"HEADERS": "YES", "AUTODETECT_TYPE": "YES"}],
    ids=["default", "autodetect", "headers", "headers-autodetect"],
)
def test_a_gdal_conversion_of_the_csv_reads_like_the_csv(tmp_path, options):
    """``ogr2ogr out.gpkg EGMS.csv`` (pyogrio runs GDAL's CSV driver as ogr2ogr does): by
    default GDAL takes the header, whose date names are numbers, for data, so the layer has
    fields field_1 ... field_n and the header as its first row (was: 'no date columns
    found'); without AUTODETECT_TYPE every field is text and a gap is an empty string
    (was: 'non-numeric value', the whole file refused for one empty field)."""
    import pyogrio

    csv = tmp_path / "asc.csv"
    csv.write_text(_with_an_empty_value(csv_text()))
    layer = pyogrio.read_dataframe(csv, **options)
    gpkg = tmp_path / "asc.gpkg"
    pyogrio.write_dataframe(layer, gpkg, driver="GPKG")
    with pytest.warns(UserWarning, match="dropped 1 point"):
        want = read_points(csv)
    with pytest.warns(UserWarning, match="dropped 1 point"):
        got = read_points(gpkg)
    assert list(got.pid.values) == list(want.pid.values) and got.sizes["point"] == 11
    np.testing.assert_array_equal(got.displacement.values, want.displacement.values)
    np.testing.assert_allclose(got.x.values, want.x.values)
    np.testing.assert_allclose(got["track_angle"].values, want["track_angle"].values)
    assert got.attrs["pass_direction"] == "ascending" and got.rio.crs == want.rio.crs


def test_a_gdal_conversion_of_a_decimal_comma_csv_reads_like_the_csv(tmp_path):
    """A European spreadsheet's ``;`` CSV with decimal commas, converted by ogr2ogr with
    ``-oo HEADERS=YES``: every field is text such as '48,1000000'. Before: 'non-numeric
    value in column 'latitude''."""
    import pyogrio

    text = csv_text()
    european = "\n".join(
        ";".join(f.replace(".", ",") if i else f for f in line.split(","))
        for i, line in enumerate(text.strip().split("\n"))
    )
    csv = _renamed(tmp_path, "eu.csv", european + "\n")
    layer = pyogrio.read_dataframe(csv, HEADERS="YES")
    assert layer["latitude"].iloc[0] == "48,1000000"
    pyogrio.write_dataframe(layer, tmp_path / "eu.gpkg", driver="GPKG")
    got, want = read_points(tmp_path / "eu.gpkg"), read_points(_renamed(tmp_path, "plain.csv", text))
    np.testing.assert_array_equal(got.displacement.values, want.displacement.values)
    np.testing.assert_allclose(got.x.values, want.x.values)


def test_a_conversion_keeps_what_the_product_name_says(tmp_path):
    """A GeoPackage or GeoParquet made from an EGMS CSV under the product's name (ogr2ogr
    keeps the name): level, track and release are read from it as from the .csv (were
    lost: the suffix hid the name), and it is gridded in EPSG:3035 as the CSV is (was the
    UTM zone of its lon/lat geometry)."""
    import io

    import geopandas as gpd
    import pandas as pd

    def convert(name, text, suffix):
        frame = pd.read_csv(io.StringIO(text), dtype={"pid": str})
        layer = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.longitude, frame.latitude), crs=4326)
        path = tmp_path / f"{name}{suffix}"
        layer.to_file(path) if suffix == ".gpkg" else layer.to_parquet(path)
        return path

    gpkg = convert(L2B_2020, csv_text(), ".gpkg")
    pts = read_points(gpkg)
    assert (pts.attrs["product_level"], pts.attrs["track"], pts.attrs["pass_direction"]) == ("L2b", 15, "ascending")
    assert pts.rio.crs.to_epsg() == 3035 and pts.attrs["product"] == "EGMS L2"
    old = convert(L2B_2018, csv_text("2018_2022", first="2018-01-05", seed=1), ".parquet")
    with pytest.raises(InputError, match=f"{L2B_2020}.gpkg: 2020_2024; {L2B_2018}.parquet: 2018_2022"):
        read_points([gpkg, old])
    # A layer without EGMS columns keeps the rule of other points: its own projected CRS or UTM.
    plain = gpd.GeoDataFrame(
        {"20200107": [0.0, 0.0], "20200113": [1.0, 2.0]},
        geometry=gpd.points_from_xy([11.5, 11.6], [48.1, 48.2]),
        crs=4326,
    )
    plain.to_file(tmp_path / "plain.gpkg")
    assert read_points(tmp_path / "plain.gpkg").rio.crs.to_epsg() == 32632


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_points_made_from_the_egms_columns_without_a_crs_take_the_columns_crs(tmp_path, suffix):
    """``ogr2ogr -oo X_POSSIBLE_NAMES=easting -oo Y_POSSIBLE_NAMES=northing out.gpkg
    EGMS.csv`` without ``-a_srs``: points with no CRS, made of the easting/northing
    columns, which EGMS defines in EPSG:3035. Before: 'unknown CRS (the file declares none)'."""
    import pyogrio

    csv = _renamed(tmp_path, "asc.csv", csv_text())
    layer = pyogrio.read_dataframe(
        csv, HEADERS="YES", AUTODETECT_TYPE="YES", X_POSSIBLE_NAMES="easting", Y_POSSIBLE_NAMES="northing"
    )
    assert layer.crs is None
    out = tmp_path / f"asc{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "'crs' was not provided"
        pyogrio.write_dataframe(layer, out, driver="GPKG") if suffix == ".gpkg" else layer.to_parquet(out)
    got, want = read_points(out), read_points(csv)
    assert got.rio.crs.to_epsg() == 3035
    np.testing.assert_allclose(got.x.values, want.x.values)
    # Points that are not those columns still need the CRS from the user.
    layer["easting"] = layer["easting"] + 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(layer, tmp_path / "moved.gpkg", driver="GPKG")
    with pytest.raises(InputError, match="unknown CRS"):
        read_points(tmp_path / "moved.gpkg")


def test_a_shapefile_of_the_csv_keeps_the_columns_cut_to_ten_characters(tmp_path):
    """A Shapefile cuts field names to 10 characters: track_angle is 'track_angl',
    mean_velocity 'mean_veloc'. Before: the pass direction, incidence and velocities were
    lost (a descending burst could merge with an ascending one)."""
    import io

    import geopandas as gpd
    import pandas as pd

    text = csv_text(geometry=DESC)
    frame = pd.read_csv(io.StringIO(text), dtype={"pid": str})
    layer = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.easting, frame.northing), crs=3035)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL: "Normalized/laundered field name"
        layer.to_file(tmp_path / "desc.shp")
    assert "track_angl" in gpd.read_file(tmp_path / "desc.shp").columns
    got, want = read_points(tmp_path / "desc.shp"), read_points(_renamed(tmp_path, "desc.csv", text))
    assert got.attrs["pass_direction"] == "descending"
    for name in ("track_angle", "incidence_angle", "mean_velocity", "mean_velocity_std", "height_ortho", "los_east"):
        np.testing.assert_allclose(got[name].values, want[name].values, err_msg=name)
    asc = _renamed(tmp_path, "asc.csv", csv_text(seed=1))
    with pytest.raises(egms.MixedGeometryError):
        read_points([tmp_path / "desc.shp", asc])


# --------------------------------------------------------------------------- spreadsheets


def _iso_headers(text):
    """The CSV with its dates named YYYY-MM-DD (as an export or a script writes them)."""
    header, rest = text.split("\n", 1)
    names = [f"{c[:4]}-{c[4:6]}-{c[6:]}" if c.isdigit() else c for c in header.split(",")]
    return ",".join(names) + "\n" + rest


@pytest.mark.parametrize("style", ["%d/%m/%Y", "%d.%m.%Y", "%m/%d/%Y", "%-d-%-m-%Y"])
@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_date_headers_a_spreadsheet_rewrote_are_read(tmp_path, style, reader):
    """A CSV whose dates are named YYYY-MM-DD, opened and saved in Excel, comes back with
    the dates as the locale writes them (07/01/2020, 07.01.2020, 1/7/2020). Before: 'no
    date columns found'."""
    import datetime

    text = _iso_headers(csv_text())
    header, rest = text.split("\n", 1)
    names = [datetime.date.fromisoformat(c).strftime(style) if c[:1].isdigit() else c for c in header.split(",")]
    saved = _renamed(tmp_path, "saved.csv", ",".join(names) + "\n" + rest)
    want = read_points(_renamed(tmp_path, "iso.csv", text))
    got = read([saved], reader, tmp_path)
    np.testing.assert_array_equal(got.time.values, want.time.values)
    np.testing.assert_array_equal(np.asarray(got.displacement), want.displacement.values)


def test_spreadsheet_dates_whose_day_and_month_cannot_be_told_apart_are_refused(tmp_path):
    header, rest = csv_text().split("\n", 1)
    names = header.split(",")
    dates = [c for c in names if c.isdigit()][:12]
    keep = [i for i, c in enumerate(names) if not c.isdigit() or c in dates]
    shown = {c: f"{i + 1:02d}/02/2020" for i, c in enumerate(dates)}  # 1 to 12 February, or January to December?
    lines = [",".join(shown.get(names[i], names[i]) for i in keep)]
    lines += [",".join(line.split(",")[i] for i in keep) for line in rest.strip().split("\n")]
    path = _renamed(tmp_path, "saved.csv", "\n".join(lines) + "\n")
    with pytest.raises(InputError, match="saved.csv: date columns such as '01/.*' .* whether the day or the month"):
        read_points(path)


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_column_repeated_in_the_header_is_named(tmp_path, reader):
    """A date column pasted twice. Before: exit 1, "KeyError: 'Field \\"20200629\\" exists 2
    times in schema'"."""
    lines = csv_text().strip().split("\n")
    last = lines[0].rsplit(",", 1)[1]
    text = "\n".join(line + "," + line.rsplit(",", 1)[1] for line in lines) + "\n"
    path = _renamed(tmp_path, "pasted.csv", text)
    with pytest.raises(InputError, match=f"pasted.csv: column '{last}' appears 2 times in the header"):
        read([path], reader, tmp_path)


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_separator_hint_line_before_the_header_is_named(tmp_path, reader):
    """``sep=;`` on the first line (written for Excel by some exporters). Before: 'no date
    columns found', which sent the user looking at the dates."""
    path = _renamed(tmp_path, "hint.csv", "sep=;\n" + _toolkit_csv(csv_text()))
    with pytest.raises(InputError, match="hint.csv: the first line is 'sep=;', a separator hint"):
        read([path], reader, tmp_path)


def _r_round_trip(text):
    """``write.csv(read.csv(f), g)`` in R: names starting with a digit get an ``X``
    (``X20200107``), a first column of quoted row names, strings quoted."""
    lines = text.strip().split("\n")
    header = ",".join(['""'] + [f'"{"X" + c if c[:1].isdigit() else c}"' for c in lines[0].split(",")])
    rows = [
        ",".join(
            [f'"{i + 1}"']
            + [f'"{v}"' if not v.replace(".", "").replace("-", "").isdigit() else v for v in line.split(",")]
        )
        for i, line in enumerate(lines[1:])
    ]
    return "\n".join([header] + rows) + "\n"


@pytest.mark.parametrize("style", ["r", "lowercase", "r-iso", "pandas-time"])
@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_date_names_other_tools_write_are_read(tmp_path, style, reader):
    """R's ``read.csv`` makes ``20200107`` into ``X20200107`` (and ``2020-01-07`` into
    ``X2020.01.07``); a database that lowercases names writes ``d20200107``; pandas names
    a column of an acquisition time ``2020-01-07 05:17:00``. Before: 'no date columns found'."""
    text = csv_text()
    if style == "r":
        changed = _r_round_trip(text)
    elif style == "lowercase":
        header, rest = text.split("\n", 1)
        changed = ",".join("d" + c if c.isdigit() else c for c in header.split(",")) + "\n" + rest
    elif style == "r-iso":
        header, rest = _iso_headers(text).split("\n", 1)
        changed = ",".join("X" + c.replace("-", ".") if c[:1].isdigit() else c for c in header.split(",")) + "\n" + rest
    else:  # a wide table pivoted in pandas from acquisition times: '2020-01-07 05:17:00'
        header, rest = _iso_headers(text).split("\n", 1)
        changed = ",".join(c + " 05:17:00" if c[:1].isdigit() else c for c in header.split(",")) + "\n" + rest
    want = read_points(_renamed(tmp_path, "plain.csv", text))
    got = read([_renamed(tmp_path, "changed.csv", changed)], reader, tmp_path)
    np.testing.assert_array_equal(got.time.values, want.time.values)
    np.testing.assert_array_equal(np.asarray(got.displacement), want.displacement.values)
    assert list(got.pid.values) == list(want.pid.values)


def _without(text, column):
    lines = [line.split(",") for line in text.strip().split("\n")]
    j = lines[0].index(column)
    return "\n".join(",".join(f for i, f in enumerate(line) if i != j) for line in lines) + "\n"


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_without_track_angle_the_los_vector_tells_the_pass_direction(tmp_path, reader):
    """Files trimmed of track_angle (the LOS vector kept, as decomposition needs it): an
    ascending and a descending one were averaged into one cube."""
    asc = _renamed(tmp_path, "asc.csv", _without(csv_text(), "track_angle"))
    desc = _renamed(tmp_path, "desc.csv", _without(csv_text(geometry=DESC, seed=1), "track_angle"))
    assert read([asc], reader, tmp_path).attrs["pass_direction"] == "ascending"
    with pytest.raises(egms.MixedGeometryError, match="asc.csv: LOS ascending; desc.csv: LOS descending"):
        read([asc, desc], reader, tmp_path)
    assert egms.pass_direction_of_los([0.01, -0.02]) is None  # no side told


def test_a_long_table_one_row_per_date_says_so(tmp_path):
    """One MP's series saved from a viewer (or a long table of many): a 'date' column and
    one row per date. Before: 'no date columns found', with no word on the layout."""
    path = _renamed(
        tmp_path, "series.csv", "pid,easting,northing,date,displacement\nA,4321050,2787050,2020-01-07,0.0\n"
    )
    with pytest.raises(
        InputError, match="series.csv: no date columns found: the dates are in column 'date', one row per"
    ):
        read_points(path)


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_excel_unicode_text_is_named(tmp_path, reader):
    """Excel's 'Unicode Text' save: UTF-16 with a BOM, tab separated. Before: 'not a text
    CSV file (binary content)'."""
    path = tmp_path / "burst.txt"
    path.write_bytes(csv_text().replace(",", "\t").encode("utf-16"))
    with pytest.raises(InputError, match="burst.txt: UTF-16 text .* not a UTF-8 CSV"):
        read([path], reader, tmp_path)


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_csv_cut_at_excels_row_limit_is_named(tmp_path, reader, monkeypatch):
    """Excel keeps 1,048,576 lines of a CSV it opens (the header and 1,048,575 rows) and
    saves it so without a word: a burst of more MPs comes back with exactly that many.
    Before: read as complete. (The limit is made 13 lines here: 12 rows and the header.)"""
    monkeypatch.setattr(egms, "SPREADSHEET_MAX_ROWS", 13)
    cut = tmp_path / "saved_in_excel.csv"
    cut.write_bytes(csv_text(n=12).replace("\n", "\r\n").encode())  # as Excel writes it
    kw = {"block_bytes": 2000} if reader == "cache" else {}  # rows counted across blocks
    for _ in ("built", "reused"):  # the cache says it again when reused
        with pytest.warns(UserWarning, match="saved_in_excel.csv has exactly Excel's row limit .13 lines with the"):
            assert read([cut], reader, tmp_path, **kw).sizes["point"] == 12
    with zipfile.ZipFile(tmp_path / "burst.zip", "w") as zf:
        zf.writestr("burst.csv", csv_text(n=12))
    with pytest.warns(UserWarning, match=r"burst.zip!burst.csv has exactly Excel's row limit"):
        read([tmp_path / "burst.zip"], reader, tmp_path / "zip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one row fewer or more: no warning
        for n in (11, 13):
            (tmp_path / f"{n}.csv").write_text(csv_text(n=n))
            assert read([tmp_path / f"{n}.csv"], reader, tmp_path / str(n), **kw).sizes["point"] == n


def test_cli_says_in_one_line_that_a_csv_was_cut_by_a_spreadsheet(tmp_path, capsys, monkeypatch):
    from insar_raster.cli import main

    monkeypatch.setattr(egms, "SPREADSHEET_MAX_ROWS", 13)
    cut = _renamed(tmp_path, "saved_in_excel.csv", csv_text(n=12))
    assert main(["grid", str(cut), "-o", str(tmp_path / "cube.nc"), "--method", "nearest"]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "row limit" in line]
    assert len(said) == 1 and "saved_in_excel.csv has exactly Excel's row limit" in said[0]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("EGMS_L2b_015_0310_IW2_VV_2020_2024_1_subset.csv", egms.FileName("L2b", "2020_2024", 1, 15, 310, 2)),
        ("EGMS_L3_E32N34_100km_U_2020_2024_1-reprojected.gpkg", egms.FileName("L3U", "2020_2024", 1, tile="E32N34")),
        ("EGMS_L2a_146_0012_IW3_VV_2018_2022_2 (3).zip", egms.FileName("L2a", "2018_2022", 2, 146, 12, 3)),
        ("EGMS_L2b_015_0310_IW2_VV_subset.csv", None),  # no release before the words: not read
    ],
)
def test_product_names_a_user_added_words_to_are_parsed(name, expected):
    """Words added after the version (a subset, a reprojection) or a browser's ' (3)': the
    name still states level, track and release. Before: none (no release check)."""
    assert egms.parse_file_name(name) == expected


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_csv_with_carriage_return_line_ends_is_named(tmp_path, reader):
    """Excel for Mac's 'CSV (Macintosh)' ends lines with CR only. Before: the whole file
    was read as its header ("column 'PS' appears 12 times in the header")."""
    path = tmp_path / "mac.csv"
    path.write_bytes(csv_text().replace("\n", "\r").encode())
    with pytest.raises(InputError, match=r"mac.csv: lines end with a carriage return only"):
        read([path], reader, tmp_path)
    crlf = tmp_path / "windows.csv"
    crlf.write_bytes(csv_text().replace("\n", "\r\n").encode())
    assert read([crlf], reader, tmp_path / "w").sizes["point"] == 12


def test_cli_decompose_refuses_renamed_files_of_two_releases(tmp_path, capsys):
    """asc.csv from a 2020_2024 burst, desc.csv from a 2018_2022 one: each geometry is read
    on its own, so nothing compared them. Before: decomposed together."""
    from insar_raster.cli import main

    asc = _renamed(tmp_path, "asc.csv", csv_text("2020_2024"))
    desc = _renamed(tmp_path, "desc.csv", csv_text("2018_2022", geometry=DESC, seed=1))
    out = tmp_path / "d.nc"
    code = main(["grid", str(asc), str(desc), "--decompose", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "different EGMS releases (asc.csv: 2020_2024 columns; desc.csv: columns of a release before" in err[0]


def test_cli_decompose_of_l3_files_says_they_are_decomposed(tmp_path, capsys):
    """L3 Up and East given to --decompose. Before: 'no per-MP line-of-sight vector'."""
    from insar_raster.cli import main

    up = _renamed(tmp_path, "up.csv", csv_text(level="L3"))
    east = _renamed(tmp_path, "east.csv", csv_text(level="L3", seed=1))
    code = main(["grid", str(up), str(east), "--decompose", "-o", str(tmp_path / "d.nc")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is already decomposed (vertical or east-west)" in err[0]
