"""lora.py: invariants (B=0 is the base, merged = unmerged, only LoRA trains), the peft file
layout, and peft itself loading our adapter onto transformers' model.

Run: python -m pytest -q tests/test_lora.py
"""
import json

import pytest
import torch

from lora import (ALL_LINEAR, LoraConfig, LoRALinear, freeze_base, inject_lora, load_adapter, lora_modules,
                  merge_lora, save_adapter, trainable_report, unload_lora, unmerge_lora)
from checkpoint import load_model, save_model
from model import Llama, LlamaConfig

V = 96
CFG = LlamaConfig(vocab_size=V, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5)


def base_model(seed=0):
    torch.manual_seed(seed)
    return Llama(CFG).eval()


def trained_lora(cfg=LoraConfig(r=4, alpha=8, dropout=0.0), steps=3, checkpointing=False):
    model = inject_lora(base_model(), cfg)
    freeze_base(model)
    model.train()
    model.gradient_checkpointing = checkpointing
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = torch.randint(0, V, (2, 12)), torch.randint(0, V, (2, 12))
    for _ in range(steps):
        opt.zero_grad()
        model(x, y)[1].backward()
        opt.step()
    return model.eval()


def test_output_unchanged_at_init_and_injection_targets():
    base = base_model()
    x = torch.randint(0, V, (2, 10))
    want = base(x)[0]
    model = inject_lora(base_model(), LoraConfig(dropout=0.5)).train()      # B = 0 even with dropout on
    assert torch.equal(model(x)[0], want)
    names = sorted(lora_modules(model))
    assert names == [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    everything = inject_lora(base_model(), LoraConfig(target_modules=ALL_LINEAR))
    assert len(lora_modules(everything)) == 2 * 7
    assert type(everything.lm_head) is torch.nn.Linear                      # never the output head
    with pytest.raises(ValueError, match="lm_head"):
        inject_lora(base_model(), LoraConfig(target_modules=("lm_head",)))
    with pytest.raises(ValueError, match="already has LoRA"):
        inject_lora(model, LoraConfig())


def test_only_lora_tensors_change_and_every_B_moves():
    before = {k: v.clone() for k, v in base_model().state_dict().items()}
    model = trained_lora()
    assert "trainable params: 1,344 /" in trainable_report(model)   # 2 layers x r4 x (q 48+48, v 48+24)
    for k, v in model.state_dict().items():
        if ".lora_" in k:
            assert not k.endswith("lora_B.weight") or v.abs().min() > 0, k
        else:
            assert torch.equal(v, before[k]), f"base tensor {k} changed"
    assert all(p.requires_grad == (".lora_" in n) for n, p in model.named_parameters())


def test_lora_trains_under_gradient_checkpointing():
    model = trained_lora(checkpointing=True)
    assert all(m.lora_B.weight.abs().sum() > 0 for m in lora_modules(model).values())


def test_merged_equals_unmerged_and_unmerge_restores():
    model = trained_lora(LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=ALL_LINEAR))
    x = torch.randint(0, V, (2, 10))
    want = model(x)[0]
    w = model.model.layers[0].mlp.down_proj.weight.clone()
    merge_lora(model)
    assert not torch.equal(model.model.layers[0].mlp.down_proj.weight, w)
    assert (model(x)[0] - want).abs().max() <= 1e-5
    unmerge_lora(model)
    assert (model.model.layers[0].mlp.down_proj.weight - w).abs().max() <= 1e-6
    assert (model(x)[0] - want).abs().max() <= 1e-5


def test_unload_gives_plain_checkpoint(tmp_path):
    model = trained_lora()
    x = torch.randint(0, V, (1, 8))
    want = model(x)[0]
    unload_lora(model)
    assert not lora_modules(model) and not any(".lora_" in k for k in model.state_dict())
    save_model(model, tmp_path)
    assert (load_model(tmp_path)(x)[0] - want).abs().max() <= 1e-5


def test_save_load_round_trip_onto_fresh_base(tmp_path):
    model = trained_lora()
    save_adapter(model, tmp_path / "adapter", LoraConfig(r=4, alpha=8, dropout=0.0), base_name="tiny-base")
    conf = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert conf["peft_type"] == "LORA" and conf["r"] == 4 and conf["lora_alpha"] == 8
    from safetensors.torch import load_file
    keys = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert keys["base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"].shape == (4, 48)
    assert keys["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"].shape == (24, 4)
    x = torch.randint(0, V, (2, 9))
    fresh = base_model()
    cfg = load_adapter(fresh, tmp_path / "adapter")
    assert cfg.r == 4 and cfg.scale == 2.0
    assert torch.equal(fresh(x)[0], model(x)[0])


def test_adapter_errors(tmp_path):
    model = trained_lora()
    save_adapter(model, tmp_path, LoraConfig(r=4, alpha=8, dropout=0.0))
    with pytest.raises(ValueError, match="shape mismatch"):
        load_adapter(inject_lora(base_model(), LoraConfig(r=2)), tmp_path)
    with pytest.raises(ValueError, match=r"missing keys: base_model\.model\.model\.layers\.0\.self_attn\.k_proj"):
        load_adapter(inject_lora(base_model(), LoraConfig(r=4, target_modules=("q_proj", "k_proj", "v_proj"))), tmp_path)
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        load_adapter(base_model(), tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no LoRA"):
        save_adapter(base_model(), tmp_path / "x", LoraConfig())


def test_peft_loads_our_adapter_onto_transformers(tmp_path):
    peft = pytest.importorskip("peft", reason="peft is the reference for the adapter layout")
    from transformers import LlamaForCausalLM
    cfg = LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=ALL_LINEAR)
    model = trained_lora(cfg)
    save_model(base_model(), tmp_path / "base")
    save_adapter(model, tmp_path / "adapter", cfg, base_name=str(tmp_path / "base"))
    hf = LlamaForCausalLM.from_pretrained(tmp_path / "base")
    hf = peft.PeftModel.from_pretrained(hf, tmp_path / "adapter").eval()
    x = torch.randint(0, V, (2, 11))
    with torch.no_grad():
        assert (hf(x).logits - model(x)[0]).abs().max() <= 1e-4
    # ... and the reverse: an adapter peft saved loads into ours
    hf.save_pretrained(tmp_path / "peft_saved")
    ours = base_model()
    load_adapter(ours, tmp_path / "peft_saved")
    assert (ours(x)[0] - model(x)[0]).abs().max() <= 1e-5


def test_lora_on_bf16_base_keeps_fp32_adapter():
    model = inject_lora(base_model().to(torch.bfloat16), LoraConfig(r=4))
    m = next(iter(lora_modules(model).values()))
    assert isinstance(m, LoRALinear) and m.weight.dtype == torch.bfloat16 and m.lora_A.weight.dtype == torch.float32
    logits, _ = model(torch.randint(0, V, (1, 5)))
    assert torch.isfinite(logits).all()
