"Resume the full-size PAD-Net sweep of one task into runs/pad_sweep_TASK.csv: python runs/resume_sweep.py TASK [THREADS]"
import sys, torch, time
from pathlib import Path
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
from padnotes.pad import pad_sweep, SweepConfig
task = sys.argv[1]
t0 = time.time()
df = pad_sweep(SweepConfig.full(task), Path(__file__).parent / f"pad_sweep_{task}.csv")
print("done", task, len(df), "rows", f"{time.time()-t0:.0f} s wall", flush=True)
