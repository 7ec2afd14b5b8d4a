"""Formation of induction heads in trained models (claim ``induction.formation``).

task.py: the synthetic in-context task; train.py: training and tracking; phase.py: the phase
change; compare.py: the trained circuit against the hand-built one; plot.py: figures.
"""
