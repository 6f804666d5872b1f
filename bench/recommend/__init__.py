"""`recbench recommend`: search variants x backends x batch sizes x threads for the best configuration under budgets."""
