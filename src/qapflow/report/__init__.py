"""Tables and plots of runs (the paper's figures), PNG and PDF with CSV beside them."""
