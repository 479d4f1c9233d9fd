;; Hostile: grows its memory by 1000 pages per poll; poll returns memory.grow's result
;; (-1: refused by the store limit).
(module
  (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (memory.grow (i32.const 1000))))
