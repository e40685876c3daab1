"""model.py against transformers' LlamaForCausalLM (the reference), plus its own invariants.

Run: python -m pytest -q tests/test_model.py
"""
import json

import pytest
import torch

from checkpoint import config_from_hf, config_to_hf, load_model, save_model
from model import PRESETS, Llama, LlamaConfig, sample

try:  # the reference implementation, a test-only dependency: the tests that need it skip one by one
    from transformers import LlamaConfig as HFConfig
    from transformers import LlamaForCausalLM
except ImportError:
    HFConfig = LlamaForCausalLM = None

V = 128
VARIANTS = {  # name: (kv heads, tied, rope_theta, rope_scaling)
    "mha-untied-1e4": (4, False, 1e4, None),
    "gqa-tied-5e5": (2, True, 5e5, None),
    "gqa-untied-5e5": (1, False, 5e5, None),
    "mha-tied-llama3": (4, True, 5e5, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
}


def needs_transformers():
    if LlamaForCausalLM is None:
        pytest.skip("transformers (the reference implementation, test-only) is not installed")


def hf_model(kv, tied, theta, scaling, seed=0):
    needs_transformers()
    torch.manual_seed(seed)
    rope = {"rope_type": "default", "rope_theta": theta} if scaling is None else {**scaling, "rope_theta": theta}
    cfg = HFConfig(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=kv, tie_word_embeddings=tied, rms_norm_eps=1e-5,
                   max_position_embeddings=64, rope_parameters=rope, bos_token_id=1, eos_token_id=2)
    m = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():     # non-trivial norm weights, so a skipped norm would show
        for n, p in m.named_parameters():
            if "norm" in n:
                p.add_(0.1 * torch.randn_like(p))
    return m


def ours_config(**kw):
    base = dict(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, rms_norm_eps=1e-5)
    return LlamaConfig(**{**base, **kw})


@pytest.fixture(params=list(VARIANTS))
def pair(request, tmp_path):
    """(transformers model, our model loaded from the folder transformers saved)."""
    hf = hf_model(*VARIANTS[request.param])
    hf.save_pretrained(tmp_path / "hf")
    return hf, load_model(tmp_path / "hf")


def test_parity_logits_hidden_states_and_greedy(pair, tmp_path):
    hf, ours = pair
    x = torch.randint(0, V, (2, 20))
    with torch.no_grad():
        ref = hf(x, output_hidden_states=True)
    logits, _ = ours(x)
    assert (logits - ref.logits).abs().max() <= 1e-4
    hs = ours.hidden_states(x)
    assert len(hs) == len(ref.hidden_states) == 3
    for a, b in zip(hs, ref.hidden_states):
        assert (a - b).abs().max() <= 1e-4
    prompt = x[:1, :8]
    want = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=32, do_sample=False,
                       eos_token_id=None, pad_token_id=0)
    assert torch.equal(ours.generate(prompt, 32), want)
    # our save -> transformers load -> same logits
    save_model(ours, tmp_path / "ours")
    back = LlamaForCausalLM.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        assert (back(x).logits - ref.logits).abs().max() <= 1e-4


def test_loss_matches_transformers(pair):
    hf, ours = pair
    x = torch.randint(0, V, (2, 16))
    labels = x.clone()
    labels[:, :5] = -100
    with torch.no_grad():
        ref = hf(x, labels=labels).loss               # transformers shifts internally
    _, loss = ours(x[:, :-1], labels[:, 1:])          # ours takes shifted targets
    assert abs(loss.item() - ref.item()) < 1e-5
    _, total = ours(x[:, :-1], labels[:, 1:], reduction="sum")
    assert abs(total.item() - loss.item() * (labels[:, 1:] != -100).sum().item()) < 1e-3


def test_left_padded_generation_matches_transformers(tmp_path):
    hf = hf_model(2, False, 1e4, None)
    hf.save_pretrained(tmp_path)
    ours = load_model(tmp_path)
    x = torch.randint(3, V, (3, 9))
    mask = torch.ones_like(x)
    mask[0, :4] = 0
    mask[1, :1] = 0
    x = x.masked_fill(mask == 0, 0)
    want = hf.generate(x, attention_mask=mask, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert torch.equal(ours.generate(x, 12, attention_mask=mask), want)


def test_sharded_and_bin_checkpoints_load(tmp_path):
    hf = hf_model(2, False, 1e4, None)
    x = torch.randint(0, V, (1, 10))
    ref = hf(x).logits.detach()
    hf.save_pretrained(tmp_path / "hf_sharded", max_shard_size="20KB")
    assert (tmp_path / "hf_sharded" / "model.safetensors.index.json").is_file()
    assert (load_model(tmp_path / "hf_sharded")(x)[0] - ref).abs().max() <= 1e-4
    ours = load_model(tmp_path / "hf_sharded")
    save_model(ours, tmp_path / "ours_sharded", max_shard_bytes=20_000)
    index = json.loads((tmp_path / "ours_sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    back = LlamaForCausalLM.from_pretrained(tmp_path / "ours_sharded").eval()
    assert (back(x).logits - ref).abs().max() <= 1e-4
    # pytorch_model.bin (older checkpoints), with the stale rotary buffer old conversions carry
    binf = tmp_path / "bin"
    binf.mkdir()
    (binf / "config.json").write_text(json.dumps(config_to_hf(ours.config)))
    state = dict(hf.state_dict(), **{"model.layers.0.self_attn.rotary_emb.inv_freq": torch.ones(8)})
    torch.save(state, binf / "pytorch_model.bin")
    assert (load_model(binf)(x)[0] - ref).abs().max() <= 1e-4


def test_config_spellings_transformers4_and_5():
    base = config_to_hf(ours_config())
    v4 = {k: v for k, v in base.items() if k not in ("rope_parameters", "dtype")}
    v4.update(rope_theta=5e5, torch_dtype="bfloat16", rope_scaling={"type": "linear", "factor": 2.0})
    v5 = {k: v for k, v in base.items() if k not in ("rope_theta", "rope_scaling", "torch_dtype")}
    v5.update(dtype="bfloat16", rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5})
    a, b = config_from_hf(v4), config_from_hf(v5)
    assert a == b
    assert a.rope_theta == 5e5 and a.rope_scaling == {"rope_type": "linear", "factor": 2.0}
    assert a.torch_dtype == "bfloat16"
    assert config_from_hf({k: v for k, v in v4.items() if k != "rope_theta"}).rope_theta == 1e4


@pytest.mark.parametrize("decode", ["dynamic", "static"])
def test_cached_generation_equals_uncached_recomputation(decode):
    torch.manual_seed(0)
    m = Llama(ours_config()).eval()
    x = torch.randint(0, V, (2, 7))
    seq = x
    for _ in range(20):
        logits, _ = m(seq)
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(m.generate(x, 20, decode=decode), seq)
    with pytest.raises(ValueError, match="graph needs CUDA"):
        m.generate(x, 2, decode="graph")


@pytest.mark.parametrize("decode", ["dynamic", "static"])
def test_left_padded_batch_equals_each_prompt_alone(decode):
    torch.manual_seed(0)
    m = Llama(ours_config(num_key_value_heads=1)).eval()
    prompts = [torch.randint(3, V, (n,)) for n in (5, 11, 8)]
    T = max(len(p) for p in prompts)
    idx = torch.zeros(3, T, dtype=torch.long)
    mask = torch.zeros(3, T, dtype=torch.long)
    for i, p in enumerate(prompts):
        idx[i, T - len(p):], mask[i, T - len(p):] = p, 1
    batch = m.generate(idx, 15, attention_mask=mask, decode=decode)
    with pytest.raises(ValueError, match="pad prompts on the left"):
        m.generate(idx, 2, attention_mask=mask.flip(1))
    padded_logits, _ = m(idx, attention_mask=mask)
    for i, p in enumerate(prompts):
        alone = m.generate(p[None], 15)
        assert torch.equal(batch[i, T - len(p):], alone[0])
        assert (padded_logits[i, T - len(p):] - m(p[None])[0][0]).abs().max() <= 1e-5


def test_eos_stops_and_pads_rows():
    torch.manual_seed(0)
    m = Llama(ours_config()).eval()
    x = torch.randint(3, V, (2, 5))
    free = m.generate(x, 10)
    eos = int(free[0, 7])                             # row 0 emits this token at its 3rd step
    out = m.generate(x, 10, eos_id=eos)
    hit = (out[:, 5:] == eos).int().argmax(-1)
    for row in range(2):
        if (out[row, 5:] == eos).any():
            assert (out[row, 5 + hit[row]:] == eos).all()
    assert out.size(1) <= 15 and (out[0, 5:8] == free[0, 5:8]).all()
    torch.manual_seed(1)
    assert torch.equal(m.generate(x, 6, temperature=0.7, top_k=1), free[:, :11])       # top-k 1 is greedy
    s = m.generate(x, 6, temperature=1.0, top_p=0.9)
    assert s.shape == (2, 11) and s.max() < V


def test_right_padding_and_masked_targets_do_not_change_loss():
    torch.manual_seed(0)
    m = Llama(ours_config())
    x = torch.randint(0, V, (2, 12))
    y = torch.randint(0, V, (2, 12))
    y[1, 8:] = -100
    mask = torch.ones_like(x)
    mask[1, 8:] = 0
    _, base = m(x, y)
    x2 = x.clone()
    x2[1, 8:] = 7                                     # change only tokens under the mask
    _, moved = m(x2, y, attention_mask=mask)
    assert abs(base.item() - moved.item()) < 1e-6


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    m = Llama(ours_config()).train()
    x, y = torch.randint(0, V, (2, 10)), torch.randint(0, V, (2, 10))
    m(x, y)[1].backward()
    g = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    m.gradient_checkpointing = True
    m(x, y)[1].backward()
    for n, p in m.named_parameters():
        assert torch.allclose(p.grad, g[n], atol=1e-6), n


def test_from_pretrained_uses_meta_device_and_keeps_dtype(tmp_path, monkeypatch):
    torch.manual_seed(0)
    m = Llama(ours_config(tie_word_embeddings=True)).to(torch.bfloat16)
    save_model(m, tmp_path / "bf16")
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"
    monkeypatch.setattr(Llama, "_init_weights", staticmethod(lambda mod: pytest.fail("random init ran")))
    loaded = load_model(tmp_path / "bf16")
    assert all(p.dtype == torch.bfloat16 and not p.is_meta for p in loaded.parameters())
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    x = torch.randint(0, V, (1, 6))
    assert torch.equal(loaded(x)[0], m.eval()(x)[0])
    as32 = load_model(tmp_path / "bf16", dtype="float32")
    assert all(p.dtype == torch.float32 for p in as32.parameters())


def test_errors_are_one_clear_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(tmp_path)
    m = Llama(ours_config())
    save_model(m, tmp_path / "ok")
    from safetensors.torch import load_file, save_file
    st = tmp_path / "ok" / "model.safetensors"
    state = load_file(st)
    missing = {k: v for k, v in state.items() if k != "model.layers.1.mlp.up_proj.weight"}
    save_file(missing, st, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"missing keys: model\.layers\.1\.mlp\.up_proj\.weight") as e:
        load_model(tmp_path / "ok")
    assert "\n" not in str(e.value)
    state["model.norm.weight"] = torch.ones(65)
    save_file(state, st, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"shape mismatch: model\.norm\.weight \(65,\) \(config expects \(64,\)\)"):
        load_model(tmp_path / "ok")
    state["model.extra.weight"] = torch.ones(1)
    save_file(state, st, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="unexpected keys: model.extra.weight"):
        load_model(tmp_path / "ok")
    conf = json.loads((tmp_path / "ok" / "config.json").read_text())
    (tmp_path / "ok" / "config.json").write_text(json.dumps({**conf, "attention_bias": True}))
    with pytest.raises(ValueError, match="attention_bias=True is not supported"):
        load_model(tmp_path / "ok")
    (tmp_path / "ok" / "config.json").write_text('{"model_type": "llama", "hidden_size": 64}')
    with pytest.raises(ValueError, match="config.json: missing field 'vocab_size'"):
        load_model(tmp_path / "ok")


def test_save_into_existing_folder_keeps_other_files_and_drops_stale_shards(tmp_path):
    m = Llama(ours_config())
    save_model(m, tmp_path, max_shard_bytes=20_000)
    (tmp_path / "tokenizer.model").write_bytes(b"x")
    save_model(m, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.model"]


def test_num_params_flops_and_presets():
    hf = hf_model(2, True, 1e4, None)
    m = Llama(ours_config(tie_word_embeddings=True))
    assert m.num_params() == hf.num_parameters()
    assert m.num_params(non_embedding=True) == m.num_params() - V * 64
    assert m.flops_per_token(16) == 6 * m.num_params() + 12 * 2 * 64 * 16
    with torch.device("meta"):
        assert Llama(PRESETS["llama-7b"]).num_params() == 6_738_415_616
        assert Llama(PRESETS["tinyllama-1.1b"]).num_params() == 1_100_048_384
    assert PRESETS["mini"].num_key_value_heads == 2 and PRESETS["mini"].num_attention_heads == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CUDA-graph decoding path)")
def test_cuda_graph_generation_matches_dynamic_and_transformers(tmp_path):
    torch.backends.cuda.matmul.allow_tf32 = False
    hf = hf_model(2, False, 5e5, None)
    hf.save_pretrained(tmp_path)
    hf = hf.cuda()
    ours = load_model(tmp_path, device="cuda")
    x = torch.randint(3, V, (3, 10), device="cuda")
    mask = torch.ones_like(x)
    mask[0, :4] = 0
    x = x.masked_fill(mask == 0, 0)
    want = hf.generate(x, attention_mask=mask, max_new_tokens=24, do_sample=False, eos_token_id=None, pad_token_id=0)
    import generate as G     # decode="graph" lives in generate.py; its "auto" is graph on CUDA
    for decode in ("graph", "static", "dynamic"):
        got = G.generate(ours, x, 24, attention_mask=mask, decode=decode)
        assert torch.equal(got, want), decode
    assert torch.equal(G.generate(ours, x[1:], 24), ours.generate(x[1:], 24, decode="dynamic"))


def test_sampling_top_k_top_p_keep_the_right_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    torch.manual_seed(0)
    assert set(sample(logits, 1.0, top_p=0.6).tolist()) == {0, 1}        # 0.5 < 0.6 needs the 2nd token
    assert set(sample(logits, 1.0, top_k=3).tolist()) == {0, 1, 2}
    freq = (sample(logits, 1.0) == 3).float().mean().item()
    assert 0.03 < freq < 0.07                                            # plain sampling: p = 0.05
    assert set(sample(logits, 0.0).tolist()) == {0}


def test_head_only_at_targets_gives_the_same_loss_and_gradients():
    # train.py runs the head only where a target is (forward(only_targets=True)): an exact shortcut
    torch.manual_seed(0)
    m = Llama(LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2))
    idx = torch.randint(0, 97, (3, 12))
    targets = torch.randint(0, 97, (3, 12))
    targets[:, :7] = -100                     # a prompt, masked
    targets[2, 9:] = -100                     # right padding
    grads = []
    for only in (False, True):
        m.zero_grad()
        logits, loss = m(idx, targets, reduction="sum", only_targets=only)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in m.parameters()]))
        if only:
            assert logits.shape == (int((targets != -100).sum()), 97)
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    for a, b in zip(grads[0][1], grads[1][1]):
        assert torch.allclose(a, b, atol=1e-6)
    assert m.flops_per_token(12, head_fraction=0.25) < m.flops_per_token(12)


def test_stream_yields_what_generate_returns_without_a_graph():
    torch.manual_seed(0)
    m = Llama(ours_config()).eval()
    idx = torch.randint(3, V, (2, 5))
    grad_on = []   # every forward of the stream runs with autograd off (a long chat would keep a graph)
    m.lm_head.register_forward_hook(lambda *_: grad_on.append(torch.is_grad_enabled()))
    steps = list(m.stream(idx, 6))
    assert grad_on and not any(grad_on)
    assert torch.equal(torch.cat([idx] + [t[:, None] for t in steps], 1), m.generate(idx, 6))
