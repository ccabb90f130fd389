"""Temeraire's neighbour effect: release-off binaries gain coverage (44.3% -> 67.3%) because neighbours fragment less.

Hunter et al., OSDI'21 (docs/literature.md section 2): binaries that never release memory were not changed
by the experiment, yet their coverage rose, because their Temeraire neighbours left the node's memory less
fragmented. The effect needs nodes whose free memory is fragmented as a production node's is
(``nodes[i].background``).
"""

from clustersim.experiments.validation import Claim

CLAIM = Claim(
    name="temeraire_neighbour_effect",
    source="Hunter et al., Temeraire, OSDI 2021, section 6",
    statement="Release-off binaries' coverage rises from 44.3% to 67.3% next to Temeraire neighbours.",
    published=67.3, low=60.0, high=75.0, unit="% THP coverage (release-off, next to Temeraire)",
    band="the published 67.3% with about 7 points either way, a third of the published rise, for the fleet "
         "sample",
    needs=("nodes.0.background",),
    lacks="production-like nodes whose fragmentation neighbours can change",
)
