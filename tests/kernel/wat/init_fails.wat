;; A driver whose init always fails (returns 7): for update-rollback tests.
(module
  (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 7))
  (func (export "poll") (result i32) (i32.const 0)))
