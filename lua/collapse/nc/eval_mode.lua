--- collapse.nc.eval_mode(model, f) -> ok, err: runs f() (protected, as pcall) with the model in
-- evaluate mode and restores its mode afterwards, also when f fails. Every measurement over a
-- model (nc.measure_model, nc.regularized_loss, nc.measure_layers) goes through it.
return function(model, f)
  local was_training = model.training
  model:evaluate()
  local ok, err = pcall(f)
  if was_training then model:train() end
  return ok, err
end
