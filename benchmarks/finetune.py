"""Full fine-tuning against LoRA (07b_finetuning): pretrain a small model on the built-in stories, fine-tune it on
stories with a new hero and new places, and measure, for each method, the loss on the new stories, the loss on the
original ones (forgetting), trainable parameters, peak memory and time. Each fine-tune runs in a fresh process
(`measure_in_subprocess`), so its memory peak is its own. Writes benchmarks/results/finetune.json.

    python benchmarks/finetune.py [--pretrain-steps 300] [--steps 40]
"""
import argparse, dataclasses, json, tempfile, time
from pathlib import Path

import torch

from scratchlm import Trainer, build_training, cpu_info, stories
from scratchlm.data import write_documents
from scratchlm.performance import measure_in_subprocess
from scratchlm._fixtures import finetune_probe, shifted_stories, tiny_config


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--pretrain-steps', type=int, default=300)
    p.add_argument('--steps', type=int, default=40, help='fine-tuning steps')
    p.add_argument('--lora-rank', type=int, default=8)
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'finetune.json'))
    a = p.parse_args()
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp())
    cfg = tiny_config(work, max_steps=a.pretrain_steps)
    cfg.tokenizer = dataclasses.replace(cfg.tokenizer, type='bpe', vocab_size=512)
    cfg.model = dataclasses.replace(cfg.model, d_model=128, num_layers=4, dim_feedforward=512, block_size=128)
    cfg.data = dataclasses.replace(cfg.data, stories=4000)
    cfg.training = dataclasses.replace(cfg.training, batch_size=16, gradient_accumulation_steps=1,
                                       eval_interval=a.pretrain_steps, warmup_steps=30)
    t0 = time.perf_counter()
    built = build_training(cfg, progress=False)
    pre = Trainer(built.model, built.cfg, built.train_data, built.valid_data, tokenizer=built.tokenizer).fit(progress=False)
    pretrain_s = time.perf_counter() - t0
    ckpt = Path(built.cfg.training.out_dir) / 'best_model.pth'
    texts = dict(new_train=write_documents(shifted_stories(200, seed=11), work / 'new_train.txt'),
                 new_valid=write_documents(shifted_stories(40, seed=12), work / 'new_valid.txt'),
                 original_valid=write_documents(stories(100, seed=13), work / 'original_valid.txt'))
    rows = [measure_in_subprocess(finetune_probe, threads=2, pretrained=str(ckpt), method=m, work_dir=str(work),
                                  max_steps=a.steps, lora_rank=a.lora_rank, **{k: str(v) for k, v in texts.items()})
            for m in ('full', 'lora')]
    print(f"pretrained {a.pretrain_steps} steps in {pretrain_s:.0f}s: validation loss {pre['val_loss']:.3f}; "
          f"fine-tuning {a.steps} steps on 200 shifted stories")
    print(f"{'method':6} {'trainable':>10} {'new before':>11} {'new after':>10} {'orig before':>12} "
          f"{'orig after':>11} {'forgetting':>11} {'peak MiB':>9} {'seconds':>8}")
    for r in rows:
        print(f"{r['method']:6} {r['trainable']:>10,} {r['new_before']:>11.3f} {r['new_after']:>10.3f} "
              f"{r['original_before']:>12.3f} {r['original_after']:>11.3f} "
              f"{r['original_after'] / r['original_before'] - 1:>+11.1%} {r['peak_bytes'] / 2**20:>9.0f} "
              f"{r['seconds']:>8.1f}")
    for r in rows: print(f"\n{r['method']}: before: {r['sample_before']!r}\n{r['method']}: after:  {r['sample_after']!r}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(cpu=cpu_info(), torch=torch.__version__, threads=2,
                                           pretrain_steps=a.pretrain_steps, pretrain_seconds=pretrain_s,
                                           pretrain_val_loss=pre['val_loss'], steps=a.steps, rows=rows), indent=1))
    print(f'wrote {a.out}')


if __name__ == '__main__': main()
