"""Named presets (``mmgef+``): a model with chosen values, resolved wherever a model is named."""

import pytest
from typer.testing import CliRunner

import mmgef.presets as presets
from mmgef.cli import app
from mmgef.config import resolve_run_config, run_config_from
from mmgef.errors import ConfigError
from mmgef.presets import load_preset, preset_names


def test_every_shipped_preset_validates_against_its_model():
    assert "mmgef+" in preset_names()
    for name in preset_names():
        preset = load_preset(name)
        cfg = resolve_run_config(model=name)
        assert cfg.model == preset.model
        assert all(cfg.params_dict()[k] == v for k, v in preset.params.items())


def _use_preset_dir(monkeypatch, tmp_path, text: str) -> None:
    (tmp_path / "mine.yaml").write_text(text)
    monkeypatch.setattr(presets, "PRESET_DIR", tmp_path)
    load_preset.cache_clear()


def test_preset_is_its_model_with_those_values_and_set_still_overrides(tmp_path, monkeypatch):
    _use_preset_dir(monkeypatch, tmp_path, "model: mmgef\ndescription: x\nparams: {cf_weight: shrunk, attention: degree}\n")
    try:
        explicit = resolve_run_config(model="mmgef", sets=["cf_weight=shrunk", "attention=degree"])
        assert resolve_run_config(model="mine").digest() == explicit.digest()  # the name never enters the digest
        assert resolve_run_config(model="mine").digest() != resolve_run_config(model="mmgef").digest()
        overridden = resolve_run_config(model="mine", sets=["attention=global"])
        assert overridden.params_dict()["attention"] == "global" and overridden.params_dict()["cf_weight"] == "shrunk"
        assert run_config_from({"model": "mine"}).digest() == explicit.digest()  # the API's dict configs too
    finally:
        load_preset.cache_clear()


def test_unknown_name_and_bad_preset_file_say_how_to_fix(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="preset"):
        load_preset("mmgef++")
    _use_preset_dir(monkeypatch, tmp_path, "model: mmgef\ndescription: x\nparams: {cf_weight: often}\n")
    try:
        with pytest.raises(ConfigError, match=r"mine\.yaml.*cf_weight"):
            resolve_run_config(model="mine")
    finally:
        load_preset.cache_clear()


def test_models_command_shows_the_preset_values():
    out = CliRunner().invoke(app, ["models", "mmgef+"])
    assert out.exit_code == 0, out.output
    preset = load_preset("mmgef+")
    assert preset.chosen in out.output
    for key, value in preset.params.items():
        assert key in out.output and repr(value) in out.output
    listing = CliRunner().invoke(app, ["models"])
    assert "mmgef+" in listing.output


def test_a_presets_alternatives_are_checked_shown_and_searched_by_a_row_that_asks_for_them(tmp_path, monkeypatch):
    from mmgef.experiments.spec import grid_points, load_spec, run_config

    out = CliRunner().invoke(app, ["models", "mmgef+"])
    for name in load_preset("mmgef+").alternatives:
        assert f"| {name} |" in out.output
    spec_text = ("name: s\ndatasets: [synthetic]\nsearch: {lr: [0.01]}\n"
                 "rows:\n  - {label: A, model: mine, alternatives: preset}\n")
    (tmp_path / "spec.yaml").write_text(spec_text)
    _use_preset_dir(monkeypatch, tmp_path, "model: mmgef\ndescription: x\nparams: {content_term: true}\n"
                    "alternatives: {as is: {}, plain: {content_term: false, cf_weight: jaccard}}\n")
    try:
        spec = load_spec(tmp_path / "spec.yaml")
        points = grid_points(spec, spec.rows[0])
        assert points == [{"lr": 0.01, "alternative": "as is"}, {"lr": 0.01, "alternative": "plain"}]
        made = [run_config(spec, spec.rows[0], "synthetic", "random", 0, p).params_dict() for p in points]
        assert [(m["content_term"], m["cf_weight"]) for m in made] == [(True, "count"), (False, "jaccard")]
        (tmp_path / "mine.yaml").write_text("model: mmgef\ndescription: x\nalternatives: {bad: {cf_weight: often}}\n")
        load_preset.cache_clear()
        with pytest.raises(ConfigError, match=r"mine\.yaml.*cf_weight"):
            load_preset("mine")
        (tmp_path / "spec.yaml").write_text(spec_text.replace("model: mine", "model: mmgef"))
        with pytest.raises(ConfigError, match="'mmgef' is not a preset with alternatives"):
            load_spec(tmp_path / "spec.yaml")
    finally:
        load_preset.cache_clear()
