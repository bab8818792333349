"""Presets: parameter counts are stable, overrides parse, BN momentum follows steps/epoch."""

import pytest

from vd.errors import UserError
from vd.model.presets import PRESETS, apply_overrides, bn_momentum_for, get_preset

# Measured with Keras count_params() on (20, 4096) input. hybrid is the seed's hybrid architecture exactly.
PARAMS_20x4096 = {
    "failed": 4_517_954,
    "ultimate": 4_823_170,
    "better": 2_620_099,
    "balanced": 4_551_234,
    "hybrid": 2_948_803,
    "hybrid-motion": 5_045_955,
    "motion-small": 104,  # 98 trainable + the standardisation's mean and variance (3 each)
}


def test_every_preset_has_a_pinned_parameter_count():
    assert set(PRESETS) == set(PARAMS_20x4096)


@pytest.mark.parametrize("name", sorted(PARAMS_20x4096))
def test_parameter_count_on_20x4096(name):
    from vd.model.builder import build_model

    model = build_model(PRESETS[name], 20, 4096)
    assert model.count_params() == PARAMS_20x4096[name]
    assert model.output_shape == (None, 2)
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"


def test_hybrid_is_the_seed_graph():
    p = PRESETS["hybrid"]
    assert p.lstm_units == (96, 96, 64) and p.dense_units == (128, 64)
    assert p.lstm_dropout == (0.35, 0.35, 0.30) and p.recurrent_dropout == (0.20, 0.20, 0.15)
    assert (p.compress, p.compress_dropout, p.l2) == (512, 0.25, 0.003)
    assert (p.focal_gamma, p.focal_alpha, p.warmup_epochs, p.epochs, p.batch_size, p.aug) == \
        (3.0, 0.25, 5, 150, 64, 3)


def test_overrides_parse_types_and_reject_unknown_keys():
    p, parsed = apply_overrides(get_preset("hybrid"), ["lr=5e-4", "lstm_units=64,64,32",
                                                       "residual=false", "epochs=3"])
    assert p.lr == 5e-4 and p.lstm_units == (64, 64, 32) and p.residual is False and p.epochs == 3
    assert parsed["lstm_units"] == (64, 64, 32)
    with pytest.raises(UserError, match="unknown key"):
        apply_overrides(p, ["nope=1"])
    with pytest.raises(UserError, match="not a valid"):
        apply_overrides(p, ["epochs=many"])
    with pytest.raises(UserError, match="unknown preset"):
        get_preset("bogus")


def test_bn_momentum_converges_within_an_epoch_of_steps():
    p = PRESETS["hybrid"]
    assert bn_momentum_for(p, 3) == 0.6           # tiny store: floor
    m = bn_momentum_for(p, 94)                    # 6,000 rows at batch 64
    assert 0.9 < m < 0.99 and m ** 94 == pytest.approx(0.05, rel=0.05)
    assert bn_momentum_for(p, 10_000) == 0.99     # never beyond Keras' default
    fixed, _ = apply_overrides(p, ["bn_momentum=0.9"])
    assert bn_momentum_for(fixed, 3) == 0.9
