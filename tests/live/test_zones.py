"""Zones and masks (vd/live/zones.py): polygons parsed and refused in one line, the layout per
frame size, and what the backbone is given: masked pixels blank, a zone's bounding box cropped,
the decoder's frame untouched. Real frames of a synthetic scene, no backbone."""

import numpy as np
import pytest

from vd.errors import UserError
from vd.extract.frames import to_rgb_square
from vd.live.zones import MAX_POINTS, MAX_SIZES, Regions, parse_polygon


@pytest.fixture(scope="module")
def frame():
    from vd.synthetic import render_clip

    return render_clip("calm", 1, (320, 240), seed=3)[0]


def test_fractions_and_pixels_are_told_apart_by_their_range():
    f = parse_polygon("0.1,0.2 0.5,0.2 0.5,0.6")
    assert f.fractions and f.points == ((0.1, 0.2), (0.5, 0.2), (0.5, 0.6))
    p = parse_polygon("10,20  300,20;300,200")
    assert not p.fractions and p.points[2] == (300.0, 200.0)
    assert parse_polygon([[0, 0], [1, 0], [1, 1]]).fractions  # a config file's list of points
    np.testing.assert_allclose(f.pixels(640, 480), [[64, 96], [320, 96], [320, 288]])


@pytest.mark.parametrize("text, why", [
    ("0,0 1,1", "at least 3 points"),
    ("0,0 1,0 x,1", "not a point"),
    ("0,0 1,0 -1,1", "not a point"),
    ("0,0 1,0 1,1,1", "not a point"),
    ("0,0 nan,0 1,1", "not a point"),
    ("0,0 1e9,0 1,1", "not a point"),
    ("0,0 99999,0 5,5", "out of range"),
    ("0,0 0.5,0.5 1,1", "no area"),
    (" ".join(["1,1"] * (MAX_POINTS + 1)), f"at most {MAX_POINTS}"),
])
def test_bad_polygons_are_refused_in_one_line(text, why):
    with pytest.raises(UserError) as e:
        parse_polygon(text)
    assert why in e.value.message and "\n" not in e.value.message and len(e.value.message) < 200


def test_a_mask_blanks_its_area_and_nothing_else_and_leaves_the_frame_alone(frame):
    before = frame.copy()
    r = Regions.parse(masks=["0.5,0 1,0 1,0.5 0.5,0.5"])  # the top-right quarter
    out = r.apply(frame)
    assert np.array_equal(frame, before)               # the decoder's buffer is not written
    assert out.shape == frame.shape
    assert not out[:119, 161:].any()                    # masked: blank (its edge pixels too)
    assert np.array_equal(out[:, :159], frame[:, :159])  # the rest as decoded
    assert np.array_equal(out[121:], frame[121:])
    lay = r.for_size(320, 240)
    assert lay.crop == (0, 0, 320, 240) and lay.analysed == pytest.approx(0.75, abs=0.01)


def test_a_zone_crops_to_its_bounding_box_and_blanks_the_rest_of_the_box(frame):
    rect = Regions.parse(zones=["160,120 320,120 320,240 160,240"])
    lay = rect.for_size(320, 240)
    assert lay.crop == (160, 120, 320, 240) and lay.keep is None   # a rectangle: a plain view
    out = rect.apply(frame)
    assert np.shares_memory(out, frame) and np.array_equal(out, frame[120:, 160:])
    # the backbone's square input shows the zone at a higher resolution than the whole frame
    zoomed, whole = to_rgb_square(out, 224), to_rgb_square(frame, 224)
    assert zoomed.shape == whole.shape == (224, 224, 3)
    assert not np.array_equal(zoomed, whole[112:, 112:])

    tri = Regions.parse(zones=["0,0 0.5,0 0,0.5"])       # a triangle in the top-left corner
    lay = tri.for_size(320, 240)
    assert lay.crop == (0, 0, 160, 120) and 0.45 < lay.analysed < 0.55
    out = tri.apply(frame)
    assert out.shape == (120, 160, 3)
    assert np.array_equal(out[:20, :20], frame[:20, :20])  # inside the triangle
    assert not out[100:, 140:].any()                       # outside it, inside its box


def test_a_mask_wins_over_a_zone_and_masking_everything_is_refused(frame):
    r = Regions.parse(masks=["0,0 0.25,0 0.25,0.25 0,0.25"], zones=["0,0 0.5,0 0.5,0.5 0,0.5"])
    out = r.apply(frame)
    assert out.shape == (120, 160, 3) and not out[:55, :75].any() and out[70:, 90:].any()
    with pytest.raises(UserError, match="cover everything"):
        Regions.parse(masks=["0,0 1,0 1,1 0,1"]).for_size(320, 240)


def test_fractions_fit_any_resolution_pixels_outside_the_frame_are_refused(frame):
    r = Regions.parse(masks=["0.25,0.25 0.75,0.25 0.75,0.75 0.25,0.75"])
    small, big = r.for_size(320, 240), r.for_size(1280, 960)
    assert small.analysed == pytest.approx(big.analysed, abs=0.01)
    px = Regions.parse(masks=["600,100 700,100 700,200"])
    with pytest.raises(UserError, match="outside the 320x240 frame"):
        px.for_size(320, 240)
    assert px.for_size(1280, 720).analysed < 1.0


def test_layouts_are_made_once_per_size_and_only_a_few_are_kept(frame):
    r = Regions.parse(masks=["0,0 0.5,0 0.5,0.5"])
    assert r.for_size(320, 240) is r.for_size(320, 240)
    for w in range(100, 100 + 3 * MAX_SIZES):
        r.for_size(w, 100)
    assert len(r._layouts) <= MAX_SIZES
    with pytest.raises(ValueError):
        r.for_size(320, 240).apply(frame[:100])
    with pytest.raises(UserError, match="at most"):
        Regions.parse(masks=["0,0 1,0 1,1"] * 40)
    assert not Regions.parse().active and Regions.parse(zones="0,0 1,0 1,1").active
