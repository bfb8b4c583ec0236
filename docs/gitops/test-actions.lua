-- Runs an Argo CD resource action's Lua the way Argo CD does: the object in the global
-- `obj`, the chunk called, its result read back.
--
--   lua5.1 docs/gitops/test-actions.lua SCRIPT.lua OBJECT.lua
--
-- For discovery.lua, prints one line per action, sorted: "<name> enabled|disabled". For an
-- action.lua, prints the object's weir.dev/action annotation, then its number of annotations.
local script_path, object_path = arg[1], arg[2]
if script_path == nil or object_path == nil then
  io.stderr:write("usage: lua5.1 test-actions.lua SCRIPT.lua OBJECT.lua\n")
  os.exit(2)
end

obj = assert(dofile(object_path), object_path .. " returns no table")
local script = assert(loadfile(script_path))
local ok, result = pcall(script)
if not ok then
  io.stderr:write("the script failed: " .. tostring(result) .. "\n")
  os.exit(1)
end
if type(result) ~= "table" then
  io.stderr:write("the script returned no table\n")
  os.exit(1)
end
if result.metadata ~= nil then
  local annotations = result.metadata.annotations or {}
  local count = 0
  for _ in pairs(annotations) do
    count = count + 1
  end
  print(annotations["weir.dev/action"] or "")
  print(count)
else
  local lines = {}
  for name, action in pairs(result) do
    table.insert(lines, name .. " " .. (action.disabled and "disabled" or "enabled"))
  end
  table.sort(lines)
  for _, line in ipairs(lines) do
    print(line)
  end
end
