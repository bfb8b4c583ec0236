-- Runs an Argo CD health check the way Argo CD does: the object in the global `obj`, the
-- check's chunk called, its table's `status` and `message` read back.
--
--   lua5.1 docs/gitops/test-harness.lua docs/gitops/argocd-health.lua OBJECT.lua
--
-- OBJECT.lua returns the object as a Lua table (Lua 5.1 has no JSON reader; the tests write
-- it from the JSON). Prints two lines: the status, then the message.
local check_path, object_path = arg[1], arg[2]
if check_path == nil or object_path == nil then
  io.stderr:write("usage: lua5.1 test-harness.lua CHECK.lua OBJECT.lua\n")
  os.exit(2)
end

obj = assert(dofile(object_path), object_path .. " returns no table")
local check = assert(loadfile(check_path))
local ok, hs = pcall(check)
if not ok then
  io.stderr:write("the health check failed: " .. tostring(hs) .. "\n")
  os.exit(1)
end
if type(hs) ~= "table" or type(hs.status) ~= "string" then
  io.stderr:write("the health check returned no {status = ...} table\n")
  os.exit(1)
end
local allowed = {Healthy = true, Progressing = true, Suspended = true, Degraded = true,
                 Missing = true, Unknown = true}
if not allowed[hs.status] then
  io.stderr:write("not an Argo CD health status: " .. hs.status .. "\n")
  os.exit(1)
end
print(hs.status)
print(hs.message or "")
