-- Runs one of Weir's Argo CD Lua scripts the way Argo CD does: the object in the global
-- `obj`, the script's chunk called, its result read back.
--
--   lua5.1 docs/gitops/test-harness.lua SCRIPT.lua OBJECT.lua
--
-- OBJECT.lua returns the object as a Lua table (Lua 5.1 has no JSON reader; the tests write
-- it from the JSON). What is printed depends on what the script returns:
--   a health check ({status = ...}): the status, then the message;
--   a resource action (the object): its weir.dev/action annotation, then its number of
--     annotations;
--   action discovery (a table of actions): one line per action, sorted,
--     "<name> enabled|disabled".
local script_path, object_path = arg[1], arg[2]
if script_path == nil or object_path == nil then
  io.stderr:write("usage: lua5.1 test-harness.lua SCRIPT.lua OBJECT.lua\n")
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

if type(result.status) == "string" then
  local allowed = {Healthy = true, Progressing = true, Suspended = true, Degraded = true,
                   Missing = true, Unknown = true}
  if not allowed[result.status] then
    io.stderr:write("not an Argo CD health status: " .. result.status .. "\n")
    os.exit(1)
  end
  print(result.status)
  print(result.message or "")
elseif result.metadata ~= nil then
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
