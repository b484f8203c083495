"Once both grids are complete: insert the full-size results section into nbs/05_padnet.ipynb, before '## Benchmark' (the verdict comes from runs/prose.md, written from the measured numbers; WALLTIME in the first cell is to be replaced by the measured wall time)."
import json
from pathlib import Path
root = Path(__file__).resolve().parents[1]
p = root / 'nbs' / '05_padnet.ipynb'
nb=json.load(open(p)); cells=nb['cells']
assert not any('### What the full-size sweep measured' in ''.join(c['source']) for c in cells), "already inserted"
def code(s): return dict(cell_type='code', execution_count=None, metadata={}, outputs=[], source=s.splitlines(True))
def md(s): return dict(cell_type='markdown', metadata={}, source=s.splitlines(True))
new=[
md("""### What the full-size sweep measured

The full-size CPU sweep (`SweepConfig.full` for both tasks: the whole grid, 3 seeds) ships with padnotes as a small CSV file, so the curves below (and the explorer and `padnotes tour`) show real measurements without retraining. `sweep_results()` reads it; `REGENERATE` is the command that rewrites it (about WALLTIME on a 2-core CPU machine)."""),
code("""full = sweep_results()
test_eq(set(full.task), {"fashion_mnist", "rotten_tomatoes"})
print(REGENERATE)
full.groupby(["task", "criterion"]).size().unstack(fill_value=0)"""),
md("`summarize_sweep` gives the mean ± std over seeds of every setting. Dev accuracy is what the plots and the claims use; the test accuracy is in the file too, and nothing was chosen by it."),
code("""fm, rt = sweep_results("fashion_mnist"), sweep_results("rotten_tomatoes")
table = summarize_sweep(full)
test_eq(table.n.min(), 3)
table.round(4)"""),
code("plot_sweep(fm)"),
code("plot_sweep(rt)"),
md("The same curves against what each model stores to deploy (a merged model at ratio $r$ stores $(1 - r) + rK$ kernels per dynamic layer, plus the attention branch):"),
code('plot_sweep(fm, x="deploy")'),
md("`pad_trends` turns the paper's claims into differences of mean dev accuracy at each ratio: IMP against the fully dynamic and static models, against random and magnitude partitions, and with scale factors against without."),
code("""trends = {t: pad_trends(d) for t, d in (("fashion_mnist", fm), ("rotten_tomatoes", rt))}
test_eq(list(trends["fashion_mnist"].ratio), [0.1, 0.3, 0.5, 0.7])
pd.concat(trends, names=["task"]).round(4)"""),
md("Where did IMP keep the dynamic entries? Averaged over seeds, for every global ratio:"),
code("""lr_fm = layer_ratios(fm)
test_eq(lr_fm.shape[0], 4)
assert ((lr_fm.values >= 0) & (lr_fm.values <= 1)).all()
plot_layer_ratios(lr_fm, "IMP on the DY-Conv ResNet-8: dynamic ratio per layer")"""),
code('plot_layer_ratios(layer_ratios(rt), "IMP on MiniLM-MoE: dynamic ratio per layer")'),
md(open(root / 'runs' / 'prose.md').read().strip()),
]
i=next(i for i,c in enumerate(cells) if ''.join(c['source']).startswith('## Benchmark'))
nb['cells']=cells[:i]+new+cells[i:]
json.dump(nb, open(p,'w'), indent=1, ensure_ascii=False)
print("inserted at", i)
