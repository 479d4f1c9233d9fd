;; Hostile: declares a 1000-page minimum memory (above the manifest's limit).
(module
  (memory (export "memory") 1000)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (i32.const 0)))
