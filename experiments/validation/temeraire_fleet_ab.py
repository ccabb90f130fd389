"""Temeraire's 1% fleet A/B: hugepage coverage 11.8% -> 23% for binaries that release memory.

Hunter et al., OSDI'21 (docs/literature.md section 2), Fig. 13: in a 1% fleet experiment the hugepage
coverage of release-on binaries rose from 11.8% to 23% (and of release-off binaries from 44.3% to 67.3%,
the neighbour effect, temeraire_neighbour_effect). A fleet's nodes hold other tenants' and the kernel's
memory and have been up for days: coverage depends on that fragmentation, which a freshly booted node does
not have. The run needs production-like nodes (``nodes[i].background``).
"""

from clustersim.experiments.validation import Claim

CLAIM = Claim(
    name="temeraire_fleet_ab",
    source="Hunter et al., Temeraire, OSDI 2021, Fig. 13 and section 6",
    statement="Temeraire raises release-on binaries' hugepage coverage from 11.8% to 23%.",
    published=23.0, low=18.0, high=28.0, unit="% THP coverage (release-on, Temeraire)",
    band="the published 23% with 5 points either way for the fleet sample (the paper gives single values)",
    needs=("nodes.0.background",),
    lacks="production-like nodes: background memory and fragmentation from days of uptime",
)
