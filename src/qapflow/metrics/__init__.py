"""The paper's metrics: accuracy, ROC/AUC, background efficiency, BOPs, neural efficiency."""
