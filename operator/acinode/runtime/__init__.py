"""One VirtualNode, one runtime: its Node keeper, its ACI backend and its pod controller, and how spec edits reach
each of them."""
