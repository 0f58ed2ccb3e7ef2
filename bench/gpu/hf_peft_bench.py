#!/usr/bin/env python3
"""The Hugging Face reference for bench/gpu/lora_bench.cc (bench/gpu/run.sh).

The same steps with transformers + PEFT on the same device: a
Llama-2-7B-shaped LlamaForCausalLM with random bf16 weights (SDPA attention),
LoRA r 8 / alpha 16 / dropout 0.05 on q_proj and k_proj (PEFT keeps the
adapters in float32), AdamW (betas 0.9, 0.95) over the adapters, `accum`
micro-batches of `micro` random sequences of `context` tokens per step,
clipping 1.0; then greedy `generate` with the KV cache for a batch of random
prompts. Prints one JSON line with the same keys as the C++ program.
"""
import argparse
import json
import sys
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--micro", type=int, default=1)
    ap.add_argument("--accum", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--gen-batch", type=int, default=16)
    ap.add_argument("--gen-prompt", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    a = ap.parse_args()
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    dev = torch.device(a.device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    if a.tiny:
        a.context = min(a.context, 128)
        a.gen_prompt, a.gen_tokens, a.gen_batch = min(a.gen_prompt, 16), min(a.gen_tokens, 16), min(a.gen_batch, 4)
        shape = dict(vocab_size=512, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4)
    else:
        shape = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                     num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32)
    cfg = LlamaConfig(**shape, max_position_embeddings=max(4096, a.context + a.gen_prompt + a.gen_tokens),
                      rms_norm_eps=1e-5, tie_word_embeddings=False, attn_implementation="sdpa")
    torch.manual_seed(1)
    t_init = time.time()
    torch.set_default_dtype(dtype)
    with torch.device(dev):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=["q_proj", "k_proj"], task_type="CAUSAL_LM"))
    for p in model.parameters():  # adapters in float32 (PEFT's autocast_adapter_dtype does it too)
        if p.requires_grad:
            p.data = p.data.float()
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    n_matmul = n_params - cfg.vocab_size * cfg.hidden_size  # without the embedding table (a lookup)
    n_lora = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95))
    model.config.use_cache = False
    model.train()
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    sync()
    t_init = time.time() - t_init

    def step(T):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(a.accum):
            seq = torch.randint(3, cfg.vocab_size, (a.micro, T), device=dev)
            loss = model(input_ids=seq, labels=seq).loss / a.accum
            loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return float(total)

    T = a.context
    for _ in range(a.warmup):
        loss = step(T)
    sync()
    t0 = time.time()
    for _ in range(a.steps):
        loss = step(T)
    sync()
    tps = a.steps * a.accum * a.micro * T / (time.time() - t0)
    L, d = cfg.num_hidden_layers, cfg.hidden_size
    attn = 12.0 * L * d * T
    peak = a.peak_tflops * 1e12

    model.eval()
    model.config.use_cache = True
    with torch.no_grad():
        prompt = torch.randint(3, cfg.vocab_size, (a.gen_batch, a.gen_prompt), device=dev)
        mask = torch.ones_like(prompt)
        gen_tps = 0.0
        for new in (4, a.gen_tokens):  # the first warms up
            sync()
            g0 = time.time()
            model.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, use_cache=True, pad_token_id=0)
            sync()
            gen_tps = a.gen_batch * new / (time.time() - g0)
    print(json.dumps({
        "impl": "hf_peft", "device": a.device, "shape": "tiny" if a.tiny else "llama-2-7b",
        "parameters": n_params, "lora_parameters": n_lora, "context": T, "micro_batch": a.micro,
        "accumulation": a.accum, "timed_steps": a.steps, "final_loss": loss, "init_s": t_init,
        "train_tokens_per_s": tps, "mfu": tps * (4.0 * n_matmul + attn) / peak,
        "mfu_6n": tps * (6.0 * n_matmul + attn) / peak, "peak_tflops": a.peak_tflops,
        "gen_batch": a.gen_batch, "gen_prompt": a.gen_prompt, "gen_new_tokens": a.gen_tokens,
        "gen_tokens_per_s": gen_tps,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "peft": __import__("peft").__version__}}))


if __name__ == "__main__":
    sys.exit(main())
