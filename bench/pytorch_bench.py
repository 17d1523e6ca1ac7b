"""Times one PyTorch training step of a forge model (bench/pytorch_models.py) on the CPU.

The step is train/trainer.cpp's: forward, cross-entropy with label smoothing 0.1, backward,
gradient clipping to global norm 1, AdamW (lr 5e-4, weight decay 0.05, betas 0.9/0.999,
eps 1e-8) step, zero_grad; in training mode (dropout and batch statistics on), on one random batch
of normal noise [batch, 3, size, size] with random labels. Warm-up steps first, then N timed
steps. One model per process, so peak RSS (ru_maxrss, MiB) is that model's.

  .venv-bench/bin/python bench/pytorch_bench.py --model vit --threads 2 --steps 20 --warmup 3 \
      --json vit.json [--profile 5]

Prints the JSON line (and writes it to --json); a human summary with the user and system CPU time
per step goes to stderr. --profile N adds a torch.profiler table of N more steps to stderr.

--inference times forward passes instead, as `build/bin/bench model --inference` does: eval mode
(dropout off, batch norm on running statistics) under torch.inference_mode(), at batch 1 and at
--batch, --steps timed passes each after --warmup; its JSON has bench's keys ("mode": "inference",
"inference": [{"batch", "passes", "ms_median", "ms_min", "ms_max", "images_per_second"}, ...]).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_models  # noqa: E402


def write_result(args, result):
    """Prints the JSON line and writes it to --json when given."""
    line = json.dumps(result)
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")


def time_inference(model, args):
    """Eval-mode forward passes under torch.inference_mode(), at batch 1 and --batch."""
    model.eval()
    passes = []
    with torch.inference_mode():
        for batch in sorted({1, args.batch}):
            images = torch.randn(batch, 3, args.image_size, args.image_size)
            for _ in range(args.warmup):
                model(images)
            times = []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                model(images)
                times.append((time.perf_counter() - t0) * 1e3)
            median = statistics.median(times)
            passes.append({"batch": batch, "passes": args.steps, "ms_median": round(median, 3),
                           "ms_min": round(min(times), 3), "ms_max": round(max(times), 3),
                           "images_per_second": round(batch * 1e3 / median, 3)})
            print(f"pytorch_bench: {args.model} inference batch {batch}: median {median:.2f} ms "
                  f"({passes[-1]['images_per_second']:.1f} img/s)", file=sys.stderr)
    return {"model": args.model, "framework": "pytorch", "torch_version": torch.__version__,
            "mode": "inference", "threads": torch.get_num_threads(),
            "image_size": args.image_size, "inference": passes,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, choices=sorted(pytorch_models.PARAMS))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=120)
    ap.add_argument("--num-classes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the JSON here")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing, profile N steps and print the op table to stderr")
    ap.add_argument("--inference", action="store_true",
                    help="time eval-mode forward passes under torch.inference_mode() at batch 1 "
                         "and --batch instead of training steps")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch < 1 or args.threads < 1:
        ap.error("need --steps >= 1, --warmup >= 0, --batch >= 1, --threads >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = pytorch_models.build(args.model, args.num_classes, args.image_size)
    if args.inference:
        write_result(args, time_inference(model, args))
        return
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=5e-4, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=0.05)
    images = torch.randn(args.batch, 3, args.image_size, args.image_size)
    labels = torch.randint(0, args.num_classes, (args.batch,))

    def step():
        logits = model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
        loss_value = loss.item()  # free on the CPU; forge's step reads nothing back
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        return loss_value

    for _ in range(args.warmup):
        step()
    times = []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB

    median = statistics.median(times)
    result = {
        "model": args.model,
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "image_size": args.image_size,
        "steps": args.steps,
        "step_ms_median": round(median, 3),
        "step_ms_min": round(min(times), 3),
        "step_ms_max": round(max(times), 3),
        "images_per_second": round(args.batch * 1e3 / median, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }
    write_result(args, result)
    user_ms = (cpu1.ru_utime - cpu0.ru_utime) * 1e3 / args.steps
    sys_ms = (cpu1.ru_stime - cpu0.ru_stime) * 1e3 / args.steps
    print(f"pytorch_bench: {args.model} torch {torch.__version__} {args.threads} threads: "
          f"median {median:.1f} ms/step ({result['images_per_second']:.1f} img/s), "
          f"min {min(times):.1f}, max {max(times):.1f}; CPU per step user {user_ms:.1f} ms, "
          f"system {sys_ms:.1f} ms (wall x threads = {median * args.threads:.1f} ms); "
          f"peak RSS {peak_rss_mb:.0f} MiB", file=sys.stderr)

    if args.profile > 0:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.profile):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25),
              file=sys.stderr)


if __name__ == "__main__":
    main()
